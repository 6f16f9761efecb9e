-- tenantify:batch audit_logs key=id size=5000
-- tenantify:statement-timeout 60s
-- Existing audit entries get the organization of the user who acted; entries of
-- the system or an agent (user_id NULL) about a host get that host's organization.
-- Entries about a host deleted since, and other system entries, stay without one.
UPDATE audit_logs a
SET organization_id = src.organization_id
FROM (
  SELECT l.id, COALESCE(u.organization_id, h.organization_id) AS organization_id
  FROM audit_logs l
  LEFT JOIN users u ON u.id = l.user_id
  LEFT JOIN hosts h ON l.user_id IS NULL AND l.entity = 'host' AND h.id = l.entity_id
  WHERE l.id > $1 AND l.id <= $2 AND l.organization_id IS NULL
) src
WHERE a.id = src.id AND src.organization_id IS NOT NULL;

-- tenantify:verify every user's audit entry carries the user's organization
SELECT a.id FROM audit_logs a JOIN users u ON u.id = a.user_id
WHERE a.organization_id IS DISTINCT FROM u.organization_id;

-- tenantify:verify system entries about an existing host carry the host's organization
SELECT a.id FROM audit_logs a JOIN hosts h ON h.id = a.entity_id
WHERE a.user_id IS NULL AND a.entity = 'host' AND a.organization_id IS DISTINCT FROM h.organization_id;
