-- tenantify:lock-timeout 5s
-- tenantify:retries 3
-- Dropping the columns drops their foreign keys (and indexes) with them.
ALTER TABLE hosts DROP COLUMN organization_id;
ALTER TABLE users DROP COLUMN organization_id;

-- tenantify:verify users and hosts no longer have organization_id
SELECT attrelid::regclass::text FROM pg_attribute
WHERE attrelid IN ('users'::regclass, 'hosts'::regclass) AND attname = 'organization_id' AND NOT attisdropped;
