-- tenantify:lock-timeout 5s
-- tenantify:retries 3
-- tenantify:allow constraint-missing-not-valid the column is new and all NULL: the check reads the table once and looks nothing up, under the lock timeout (500ms by default)
-- tenantify:allow adding-foreign-key-constraint the column is new and all NULL: the check reads the table once and looks nothing up, under the lock timeout (500ms by default)
-- The audit log gains tenant and request context. Only additions: severity has a
-- constant default (no table rewrite on PostgreSQL 11+), the others are NULL.
CREATE TYPE audit_severity AS ENUM ('DEBUG', 'INFO', 'WARNING', 'CRITICAL');

ALTER TABLE audit_logs
  ADD COLUMN organization_id INTEGER,
  ADD COLUMN team_id INTEGER,
  ADD COLUMN ip_address INET,
  ADD COLUMN user_agent TEXT,
  ADD COLUMN request_id VARCHAR(64),
  ADD COLUMN severity audit_severity NOT NULL DEFAULT 'INFO',
  ADD COLUMN metadata JSONB;
ALTER TABLE audit_logs ADD CONSTRAINT audit_logs_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE audit_logs ADD CONSTRAINT audit_logs_team_id_fkey FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE SET NULL ON UPDATE CASCADE;

-- tenantify:verify audit_logs has every new column
SELECT c FROM unnest(ARRAY['organization_id', 'team_id', 'ip_address', 'user_agent', 'request_id', 'severity', 'metadata']) AS c
WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = 'audit_logs'::regclass AND a.attname = c AND NOT a.attisdropped);
