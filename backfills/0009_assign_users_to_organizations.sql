-- tenantify:batch users key=id size=2000
-- tenantify:statement-timeout 60s
-- Each user joins the default organization they own. Only the new column is
-- written (updated_at is left alone), so a rollback restores users exactly.
UPDATE users u
SET organization_id = o.id
FROM organizations o
WHERE o.owner_id = u.id
  AND o.is_default
  AND u.id > $1 AND u.id <= $2
  AND u.organization_id IS NULL;

-- tenantify:precheck every user owns a default organization
SELECT u.id FROM users u
WHERE NOT EXISTS (SELECT 1 FROM organizations o WHERE o.owner_id = u.id AND o.is_default);

-- tenantify:verify every user has an organization
SELECT id FROM users WHERE organization_id IS NULL;

-- tenantify:verify the organization exists
SELECT u.id FROM users u LEFT JOIN organizations o ON o.id = u.organization_id
WHERE u.organization_id IS NOT NULL AND o.id IS NULL;

-- tenantify:verify every default organization's owner is a member
SELECT o.id FROM organizations o JOIN users u ON u.id = o.owner_id
WHERE o.is_default AND u.organization_id IS DISTINCT FROM o.id;
