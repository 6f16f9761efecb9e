DELETE FROM teams t
USING organizations o
WHERE o.id = t.organization_id AND o.is_default AND t.is_default AND t.name = 'Default';
SELECT setval(pg_get_serial_sequence('teams', 'id'), COALESCE(max(id), 0) + 1, false) FROM teams;

-- tenantify:verify no default team is left
SELECT id FROM teams WHERE is_default;
