-- organization_id is a new column: nothing legacy to restore, only clear it.
UPDATE audit_logs SET organization_id = NULL WHERE organization_id IS NOT NULL;

-- tenantify:verify no audit entry carries an organization
SELECT id FROM audit_logs WHERE organization_id IS NOT NULL;
