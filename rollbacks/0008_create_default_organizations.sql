-- Delete the default organizations this unit created (their default teams go
-- with them by cascade), then rewind the organizations id sequence.
DELETE FROM organizations WHERE is_default AND slug = 'org-' || owner_id;
SELECT setval(pg_get_serial_sequence('organizations', 'id'), COALESCE(max(id), 0) + 1, false) FROM organizations;

-- tenantify:verify no default organization is left
SELECT id FROM organizations WHERE is_default;
