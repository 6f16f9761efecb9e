DELETE FROM host_teams ht
USING teams t, hosts h
WHERE t.id = ht.team_id AND t.is_default
  AND h.id = ht.host_id AND h.organization_id = t.organization_id;

-- tenantify:verify no host is left in a default team
SELECT ht.host_id FROM host_teams ht JOIN teams t ON t.id = ht.team_id WHERE t.is_default;
