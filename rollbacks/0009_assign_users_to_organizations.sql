-- Undo exactly what the unit did: users who sit in the default organization they own.
UPDATE users u
SET organization_id = NULL
FROM organizations o
WHERE o.id = u.organization_id AND o.is_default AND o.owner_id = u.id;

-- tenantify:verify no user is left in their default organization
SELECT u.id FROM users u JOIN organizations o ON o.id = u.organization_id
WHERE o.is_default AND o.owner_id = u.id;
