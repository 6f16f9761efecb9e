/**
 * Every isolation rule of `tenancy check`, in the order findings are shown. A new rule is
 * one file beside these and one line here.
 */
import { foreignKeyWithoutTenantKey, uniqueWithoutTenantKey } from './constraints.js';
import { crossTenantReference } from './cross-tenant-reference.js';
import { danglingTenant } from './dangling-tenant.js';
import { distributionKeyMismatch, referenceTableMissing } from './distribution.js';
import { foreignKeyMissing } from './foreign-key-missing.js';
import { globalTableReferencesTenant } from './global-table-references-tenant.js';
import { materializedViewExposesTenants } from './materialized-view-exposes-tenants.js';
import { nullTenant } from './null-tenant.js';
import { policyAlwaysTrue, policyIgnoresTenantKey, policyMissingWithCheck } from './policies.js';
import { probeReadLeak, probeWriteLeak } from './probe.js';
import { rlsDisabled, rlsNoPolicy, rlsNotForced } from './rls.js';
import { rlsPolicyCost } from './rls-policy-cost.js';
import { securityDefinerReadsTenants } from './security-definer-reads-tenants.js';
import { tenantKeyMissing, tenantKeyNullable, tenantKeyUnindexed } from './tenant-key.js';
import { tenantKeyTypeMismatch } from './tenant-key-type-mismatch.js';
import { tenantSettingDefault } from './tenant-setting-default.js';
import { viewBypassesRls } from './view-bypasses-rls.js';
import type { Rule } from './types.js';

export const rules: readonly Rule[] = [
  tenantKeyMissing,
  tenantKeyTypeMismatch,
  tenantKeyNullable,
  nullTenant,
  danglingTenant,
  foreignKeyMissing,
  crossTenantReference,
  globalTableReferencesTenant,
  tenantKeyUnindexed,
  uniqueWithoutTenantKey,
  foreignKeyWithoutTenantKey,
  rlsDisabled,
  rlsNotForced,
  rlsNoPolicy,
  policyIgnoresTenantKey,
  policyAlwaysTrue,
  policyMissingWithCheck,
  viewBypassesRls,
  materializedViewExposesTenants,
  securityDefinerReadsTenants,
  tenantSettingDefault,
  distributionKeyMismatch,
  referenceTableMissing,
  probeReadLeak,
  probeWriteLeak,
  rlsPolicyCost,
];

export type { CatalogRule, DataQuery, DataRule, Finding, Level, ProbeRule, Rule, RuleFinding } from './types.js';
