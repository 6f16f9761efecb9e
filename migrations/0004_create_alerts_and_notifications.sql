-- Host alerts and the notifications they send, both scoped to an organization.
CREATE TYPE alert_severity AS ENUM ('INFO', 'WARNING', 'CRITICAL');
CREATE TYPE alert_status AS ENUM ('OPEN', 'ACKNOWLEDGED', 'RESOLVED');
CREATE TYPE notification_channel AS ENUM ('EMAIL', 'SLACK', 'WEBHOOK', 'IN_APP');

CREATE TABLE alerts (
  id              SERIAL NOT NULL,
  organization_id INTEGER NOT NULL,
  host_id         INTEGER,
  type            VARCHAR(64) NOT NULL,
  severity        alert_severity NOT NULL DEFAULT 'WARNING',
  status          alert_status NOT NULL DEFAULT 'OPEN',
  message         TEXT NOT NULL,
  metadata        JSONB,
  acknowledged_by INTEGER,
  acknowledged_at TIMESTAMP(3),
  resolved_at     TIMESTAMP(3),
  created_at      TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT alerts_pkey PRIMARY KEY (id),
  CONSTRAINT alerts_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT alerts_host_id_fkey FOREIGN KEY (host_id) REFERENCES hosts (id) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT alerts_acknowledged_by_fkey FOREIGN KEY (acknowledged_by) REFERENCES users (id) ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE INDEX alerts_organization_id_status_idx ON alerts (organization_id, status);
CREATE INDEX alerts_host_id_idx ON alerts (host_id);

CREATE TABLE notifications (
  id              SERIAL NOT NULL,
  organization_id INTEGER NOT NULL,
  user_id         INTEGER NOT NULL,
  alert_id        INTEGER,
  channel         notification_channel NOT NULL DEFAULT 'IN_APP',
  title           VARCHAR(255) NOT NULL,
  body            TEXT,
  sent_at         TIMESTAMP(3),
  read_at         TIMESTAMP(3),
  created_at      TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT notifications_pkey PRIMARY KEY (id),
  CONSTRAINT notifications_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT notifications_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT notifications_alert_id_fkey FOREIGN KEY (alert_id) REFERENCES alerts (id) ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE INDEX notifications_user_id_read_at_idx ON notifications (user_id, read_at);
