-- tenantify:batch users key=id size=2000
-- Permissions and roles: every user joins their organization's default team.
-- A legacy VIEWER stays read-only (VIEWER); ADMIN and USER own their organization
-- (OWNER). The global users.role is left as it is.
INSERT INTO user_teams (user_id, team_id, role, created_at)
SELECT u.id,
       t.id,
       CASE WHEN u.role = 'VIEWER' THEN 'VIEWER'::team_role ELSE 'OWNER'::team_role END,
       u.created_at
FROM users u
JOIN teams t ON t.organization_id = u.organization_id AND t.is_default
WHERE u.id > $1 AND u.id <= $2
ON CONFLICT (user_id, team_id) DO NOTHING;

-- tenantify:precheck every user has an organization with a default team
SELECT u.id FROM users u
WHERE NOT EXISTS (SELECT 1 FROM teams t WHERE t.organization_id = u.organization_id AND t.is_default);

-- tenantify:verify every user is in their organization's default team with the mapped role
SELECT u.id FROM users u
JOIN teams t ON t.organization_id = u.organization_id AND t.is_default
LEFT JOIN user_teams ut ON ut.user_id = u.id AND ut.team_id = t.id
WHERE ut.role IS DISTINCT FROM (CASE WHEN u.role = 'VIEWER' THEN 'VIEWER' ELSE 'OWNER' END)::team_role;

-- tenantify:verify every default organization has an owner in its default team
SELECT t.organization_id FROM teams t
WHERE t.is_default
  AND NOT EXISTS (SELECT 1 FROM user_teams ut WHERE ut.team_id = t.id)
  AND EXISTS (SELECT 1 FROM users u WHERE u.organization_id = t.organization_id);
