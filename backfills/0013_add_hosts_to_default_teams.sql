-- tenantify:batch hosts key=id size=5000
-- Every host is visible to its organization's default team.
INSERT INTO host_teams (host_id, team_id, created_at)
SELECT h.id, t.id, h.created_at
FROM hosts h
JOIN teams t ON t.organization_id = h.organization_id AND t.is_default
WHERE h.id > $1 AND h.id <= $2
ON CONFLICT (host_id, team_id) DO NOTHING;

-- tenantify:verify every host is in its organization's default team
SELECT h.id FROM hosts h
WHERE NOT EXISTS (
  SELECT 1 FROM host_teams ht JOIN teams t ON t.id = ht.team_id
  WHERE ht.host_id = h.id AND t.is_default AND t.organization_id = h.organization_id);

-- tenantify:verify no host is in a team of another organization
SELECT ht.host_id FROM host_teams ht JOIN teams t ON t.id = ht.team_id JOIN hosts h ON h.id = ht.host_id
WHERE t.organization_id IS DISTINCT FROM h.organization_id;
