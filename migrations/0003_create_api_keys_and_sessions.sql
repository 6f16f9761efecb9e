-- API keys belong to an organization (optionally created by a user);
-- sessions remember the organization a user is working in.
CREATE TABLE api_keys (
  id              SERIAL NOT NULL,
  organization_id INTEGER NOT NULL,
  user_id         INTEGER,
  name            VARCHAR(255) NOT NULL,
  key_hash        VARCHAR(255) NOT NULL,
  key_prefix      VARCHAR(16) NOT NULL,
  scopes          TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
  last_used_at    TIMESTAMP(3),
  expires_at      TIMESTAMP(3),
  revoked_at      TIMESTAMP(3),
  created_at      TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT api_keys_pkey PRIMARY KEY (id),
  CONSTRAINT api_keys_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT api_keys_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_organization_id_idx ON api_keys (organization_id);

CREATE TABLE sessions (
  id              UUID NOT NULL DEFAULT gen_random_uuid(),
  user_id         INTEGER NOT NULL,
  organization_id INTEGER,
  token_hash      VARCHAR(255) NOT NULL,
  ip_address      INET,
  user_agent      TEXT,
  expires_at      TIMESTAMP(3) NOT NULL,
  last_active_at  TIMESTAMP(3),
  created_at      TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT sessions_pkey PRIMARY KEY (id),
  CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT sessions_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE UNIQUE INDEX sessions_token_hash_key ON sessions (token_hash);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
