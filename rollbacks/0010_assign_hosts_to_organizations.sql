-- Undo exactly what the unit did: hosts that sit in their owner's organization.
UPDATE hosts h
SET organization_id = NULL
FROM users u
WHERE u.id = h.user_id AND h.organization_id = u.organization_id;

-- tenantify:verify no host is left in its owner's organization
SELECT h.id FROM hosts h JOIN users u ON u.id = h.user_id
WHERE h.organization_id = u.organization_id;
