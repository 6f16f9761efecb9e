-- Default organizations and teams took explicit ids (0008, 0011): move the id sequences
-- past them so the application's next organization or team gets a fresh id.
SELECT setval(pg_get_serial_sequence('organizations', 'id'), COALESCE(max(id), 0) + 1, false) FROM organizations;
SELECT setval(pg_get_serial_sequence('teams', 'id'), COALESCE(max(id), 0) + 1, false) FROM teams;

-- tenantify:verify the organization sequence is past every organization id
SELECT 1 FROM organizations_id_seq s WHERE s.last_value <= (SELECT COALESCE(max(id), 0) FROM organizations) AND s.is_called;

-- tenantify:verify the team sequence is past every team id
SELECT 1 FROM teams_id_seq s WHERE s.last_value <= (SELECT COALESCE(max(id), 0) FROM teams) AND s.is_called;
