-- tenantify:lock-timeout 5s
DROP TABLE organizations;
DROP TYPE subscription_status;
DROP TYPE organization_plan;

-- tenantify:verify organizations and its types are gone
SELECT c.relname::text FROM pg_class c WHERE c.relname = 'organizations' AND c.relnamespace = 'public'::regnamespace
UNION ALL
SELECT t.typname::text FROM pg_type t WHERE t.typname IN ('organization_plan', 'subscription_status') AND t.typnamespace = 'public'::regnamespace;
