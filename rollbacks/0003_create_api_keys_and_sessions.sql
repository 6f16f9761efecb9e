DROP TABLE sessions;
DROP TABLE api_keys;
