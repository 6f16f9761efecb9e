-- tenantify:lock-timeout 5s
-- tenantify:retries 3
-- tenantify:allow constraint-missing-not-valid the column is new and all NULL: the check reads the table once and looks nothing up, under the 5s lock timeout
-- tenantify:allow adding-foreign-key-constraint the column is new and all NULL: the check reads the table once and looks nothing up, under the 5s lock timeout
-- Nullable columns with no default: a catalog-only change, so the ACCESS
-- EXCLUSIVE lock is brief; lock-timeout plus retries keep it from queueing behind
-- long transactions. The foreign keys only scan NULLs here. The columns are
-- indexed concurrently by 0007 and filled by backfills 0009 and 0010.
ALTER TABLE users ADD COLUMN organization_id INTEGER;
ALTER TABLE hosts ADD COLUMN organization_id INTEGER;
ALTER TABLE users ADD CONSTRAINT users_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE hosts ADD CONSTRAINT hosts_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE SET NULL ON UPDATE CASCADE;
