-- Teams inside an organization, and who (users) and what (hosts) belongs to them.
CREATE TYPE team_role AS ENUM ('OWNER', 'ADMIN', 'MEMBER', 'VIEWER');

CREATE TABLE teams (
  id              SERIAL NOT NULL,
  organization_id INTEGER NOT NULL,
  name            VARCHAR(255) NOT NULL,
  description     TEXT,
  is_default      BOOLEAN NOT NULL DEFAULT false,
  created_at      TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at      TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT teams_pkey PRIMARY KEY (id),
  CONSTRAINT teams_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX teams_organization_id_name_key ON teams (organization_id, name);

CREATE TABLE user_teams (
  user_id    INTEGER NOT NULL,
  team_id    INTEGER NOT NULL,
  role       team_role NOT NULL DEFAULT 'MEMBER',
  created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT user_teams_pkey PRIMARY KEY (user_id, team_id),
  CONSTRAINT user_teams_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT user_teams_team_id_fkey FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX user_teams_team_id_idx ON user_teams (team_id);

CREATE TABLE host_teams (
  host_id    INTEGER NOT NULL,
  team_id    INTEGER NOT NULL,
  created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT host_teams_pkey PRIMARY KEY (host_id, team_id),
  CONSTRAINT host_teams_host_id_fkey FOREIGN KEY (host_id) REFERENCES hosts (id) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT host_teams_team_id_fkey FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX host_teams_team_id_idx ON host_teams (team_id);
