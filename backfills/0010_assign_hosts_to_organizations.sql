-- tenantify:batch hosts key=id size=5000
-- tenantify:statement-timeout 60s
-- Every host joins its owner's organization.
UPDATE hosts h
SET organization_id = u.organization_id
FROM users u
WHERE u.id = h.user_id
  AND h.id > $1 AND h.id <= $2
  AND h.organization_id IS NULL
  AND u.organization_id IS NOT NULL;

-- tenantify:precheck every host has an owner
SELECT h.id FROM hosts h LEFT JOIN users u ON u.id = h.user_id WHERE u.id IS NULL;

-- tenantify:precheck every host owner has an organization
SELECT DISTINCT h.user_id FROM hosts h JOIN users u ON u.id = h.user_id
WHERE u.organization_id IS NULL;

-- tenantify:verify every host has an organization
SELECT id FROM hosts WHERE organization_id IS NULL;

-- tenantify:verify every host's organization is its owner's organization
SELECT h.id FROM hosts h JOIN users u ON u.id = h.user_id
WHERE h.organization_id IS DISTINCT FROM u.organization_id;
