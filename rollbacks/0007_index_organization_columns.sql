-- tenantify:lock-timeout 5s
-- tenantify:retries 3
-- tenantify:allow require-concurrent-index-deletion DROP INDEX only changes the catalog: its ACCESS EXCLUSIVE lock lasts milliseconds once granted, and the 5s lock timeout bounds the wait for it
DROP INDEX IF EXISTS audit_logs_team_id_idx;
DROP INDEX IF EXISTS audit_logs_organization_id_created_at_idx;
DROP INDEX IF EXISTS hosts_organization_id_idx;
DROP INDEX IF EXISTS users_organization_id_idx;

-- tenantify:verify the organization indexes are gone
SELECT c.relname::text FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace
  AND c.relname IN ('users_organization_id_idx', 'hosts_organization_id_idx', 'audit_logs_organization_id_created_at_idx', 'audit_logs_team_id_idx');
