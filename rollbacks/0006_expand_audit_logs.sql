-- tenantify:lock-timeout 5s
-- tenantify:retries 3
ALTER TABLE audit_logs
  DROP COLUMN metadata,
  DROP COLUMN severity,
  DROP COLUMN request_id,
  DROP COLUMN user_agent,
  DROP COLUMN ip_address,
  DROP COLUMN team_id,
  DROP COLUMN organization_id;
DROP TYPE audit_severity;

-- tenantify:verify audit_logs has only its legacy columns
SELECT attname::text FROM pg_attribute
WHERE attrelid = 'audit_logs'::regclass AND attnum > 0 AND NOT attisdropped
  AND attname NOT IN ('id', 'user_id', 'action', 'entity', 'entity_id', 'details', 'created_at');
