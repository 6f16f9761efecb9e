-- tenantify:batch organizations key=id size=5000
-- One "Default" team per default organization: the team that carries the legacy
-- permissions (the owner and all of their hosts).
-- The id is the organization's (one default team each): deterministic, see 0008.
INSERT INTO teams (id, organization_id, name, description, is_default, created_at, updated_at)
SELECT o.id, o.id, 'Default', 'Everyone and every host in ' || o.name, true, o.created_at, o.created_at
FROM organizations o
WHERE o.is_default
  AND o.id > $1 AND o.id <= $2
  AND NOT EXISTS (SELECT 1 FROM teams d WHERE d.organization_id = o.id AND d.name = 'Default')
ORDER BY o.id
ON CONFLICT (organization_id, name) DO NOTHING;

-- tenantify:verify every default organization has a default team
SELECT o.id FROM organizations o
WHERE o.is_default
  AND NOT EXISTS (SELECT 1 FROM teams t WHERE t.organization_id = o.id AND t.is_default);
