-- tenantify:lock-timeout 5s
DROP TABLE sessions;
DROP TABLE api_keys;
