-- tenantify:transaction off
-- Index the new foreign-key columns CONCURRENTLY, so users, hosts and the audit
-- log stay writable while the indexes build. They are built before the backfills
-- on purpose: the backfills' verifies use them, and without them every deleted
-- organization or team (the app's deletes, and rollbacks 0008 and 0011) would scan
-- users, hosts and audit_logs once per row for the ON DELETE SET NULL keys.
-- IF NOT EXISTS makes a re-run skip finished indexes; the verify catches an
-- invalid one left by a killed build (drop it and re-run).
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_organization_id_idx ON users (organization_id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS hosts_organization_id_idx ON hosts (organization_id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_logs_organization_id_created_at_idx ON audit_logs (organization_id, created_at);
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_logs_team_id_idx ON audit_logs (team_id) WHERE team_id IS NOT NULL;

-- tenantify:verify the organization indexes exist and are valid
SELECT n FROM unnest(ARRAY['users_organization_id_idx', 'hosts_organization_id_idx', 'audit_logs_organization_id_created_at_idx', 'audit_logs_team_id_idx']) AS n
WHERE NOT EXISTS (
  SELECT 1 FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
  WHERE c.relname = n AND c.relnamespace = 'public'::regnamespace AND i.indisvalid);
