-- tenantify:batch users key=id size=2000
-- tenantify:statement-timeout 60s
-- One default (personal) organization for every existing user, active users or not.
-- Named after the user (name, else username); slug org-<user id> is unique and stable.
-- Re-running inserts nothing (and burns no ids): NOT EXISTS, with the partial
-- unique index on owner_id WHERE is_default as the backstop.
-- The id is the owner's id, not the sequence's next value: a batch killed half-way burns
-- no sequence values, so a resumed run produces exactly the ids of an uninterrupted one.
-- Unit 0015 moves the sequence past them.
INSERT INTO organizations (id, name, slug, owner_id, is_default, plan, subscription_status, created_at, updated_at)
SELECT u.id,
       COALESCE(NULLIF(btrim(u.name), ''), u.username) || '''s organization',
       'org-' || u.id,
       u.id,
       true,
       'FREE',
       'ACTIVE',
       u.created_at,
       u.created_at
FROM users u
WHERE u.id > $1 AND u.id <= $2
  AND NOT EXISTS (SELECT 1 FROM organizations d WHERE d.owner_id = u.id AND d.is_default)
ORDER BY u.id
ON CONFLICT (owner_id) WHERE is_default DO NOTHING;

-- tenantify:verify every user owns a default organization
SELECT u.id FROM users u
WHERE NOT EXISTS (SELECT 1 FROM organizations o WHERE o.owner_id = u.id AND o.is_default);

-- tenantify:verify default organizations are named after their owner
SELECT o.id FROM organizations o JOIN users u ON u.id = o.owner_id
WHERE o.is_default
  AND (o.slug <> 'org-' || u.id OR o.name <> COALESCE(NULLIF(btrim(u.name), ''), u.username) || '''s organization');
