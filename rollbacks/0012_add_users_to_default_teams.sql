DELETE FROM user_teams ut
USING teams t, users u
WHERE t.id = ut.team_id AND t.is_default
  AND u.id = ut.user_id AND u.organization_id = t.organization_id;

-- tenantify:verify no default-team membership is left
SELECT ut.user_id FROM user_teams ut JOIN teams t ON t.id = ut.team_id WHERE t.is_default;
