-- tenantify:lock-timeout 5s
-- tenantify:retries 3
-- Organizations become the top-level tenant. Subscription state lives on the
-- organization (Stripe customer, subscription, plan, status).
-- is_default marks the personal organization the plan creates for an existing user;
-- the partial unique index makes that backfill idempotent.
CREATE TYPE organization_plan AS ENUM ('FREE', 'STARTER', 'PRO', 'ENTERPRISE');
CREATE TYPE subscription_status AS ENUM ('TRIALING', 'ACTIVE', 'PAST_DUE', 'CANCELED', 'UNPAID', 'INCOMPLETE');

CREATE TABLE organizations (
  id                     SERIAL NOT NULL,
  name                   VARCHAR(255) NOT NULL,
  slug                   VARCHAR(255) NOT NULL,
  owner_id               INTEGER,
  is_default             BOOLEAN NOT NULL DEFAULT false,
  plan                   organization_plan NOT NULL DEFAULT 'FREE',
  subscription_status    subscription_status NOT NULL DEFAULT 'ACTIVE',
  stripe_customer_id     VARCHAR(255),
  stripe_subscription_id VARCHAR(255),
  stripe_price_id        VARCHAR(255),
  trial_ends_at          TIMESTAMP(3),
  current_period_end     TIMESTAMP(3),
  cancel_at_period_end   BOOLEAN NOT NULL DEFAULT false,
  created_at             TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at             TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT organizations_pkey PRIMARY KEY (id),
  CONSTRAINT organizations_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE UNIQUE INDEX organizations_slug_key ON organizations (slug);
CREATE UNIQUE INDEX organizations_stripe_customer_id_key ON organizations (stripe_customer_id);
CREATE UNIQUE INDEX organizations_stripe_subscription_id_key ON organizations (stripe_subscription_id);
CREATE UNIQUE INDEX organizations_default_owner_key ON organizations (owner_id) WHERE is_default;
