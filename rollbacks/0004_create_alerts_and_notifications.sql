DROP TABLE notifications;
DROP TABLE alerts;
DROP TYPE notification_channel;
DROP TYPE alert_status;
DROP TYPE alert_severity;
