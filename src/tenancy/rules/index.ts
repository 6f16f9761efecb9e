/**
 * Every isolation rule of `tenancy check`, in the order findings are shown. A new rule is
 * one file beside these and one line here.
 */
import { foreignKeyWithoutTenantKey, uniqueWithoutTenantKey } from './constraints.js';
import { crossTenantReference } from './cross-tenant-reference.js';
import { danglingTenant } from './dangling-tenant.js';
import { distributionKeyMismatch, referenceTableMissing } from './distribution.js';
import { nullTenant } from './null-tenant.js';
import { policyAlwaysTrue, policyIgnoresTenantKey, policyMissingWithCheck } from './policies.js';
import { probeReadLeak, probeWriteLeak } from './probe.js';
import { rlsDisabled, rlsNoPolicy, rlsNotForced } from './rls.js';
import { tenantKeyMissing, tenantKeyNullable, tenantKeyUnindexed } from './tenant-key.js';
import type { Rule } from './types.js';

export const rules: readonly Rule[] = [
  tenantKeyMissing,
  tenantKeyNullable,
  nullTenant,
  danglingTenant,
  crossTenantReference,
  tenantKeyUnindexed,
  uniqueWithoutTenantKey,
  foreignKeyWithoutTenantKey,
  rlsDisabled,
  rlsNotForced,
  rlsNoPolicy,
  policyIgnoresTenantKey,
  policyAlwaysTrue,
  policyMissingWithCheck,
  distributionKeyMismatch,
  referenceTableMissing,
  probeReadLeak,
  probeWriteLeak,
];

export type { CatalogRule, DataQuery, DataRule, Finding, Level, ProbeRule, Rule, RuleFinding } from './types.js';
