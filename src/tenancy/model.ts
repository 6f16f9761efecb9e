/**
 * The tenancy model in tenantify.config.json (`tenancy`), validated with the rest of the
 * configuration. This checks the model's form; whether it fits the database (tables that
 * exist, `via` columns that are foreign keys, `detach` on nullable columns) is checked
 * against the catalog by graph.ts.
 */
import * as z from 'zod/mini';
import { UsageError } from '../errors.js';
import type { TenancyConfig } from './types.js';

const name = z.string().check(z.minLength(1));
const unresolved = z.enum(['fail', 'delete', 'keep']);
const conflict = z.enum(['fail', 'detach', 'delete', 'keep']);

const tenantTable = z.strictObject({
  via: z.optional(z.array(name).check(z.minLength(1))),
  unresolved: z.optional(unresolved),
  conflicts: z.optional(z.record(name, conflict)),
});

export const tenancySchema = z.strictObject({
  owner: name,
  tenants: z.optional(name),
  key: z.optional(name),
  setting: z.optional(z.string().check(z.regex(/^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_.]*$/, 'a custom setting name with a dot, e.g. app.tenant_id'))),
  rls: z.optional(z.boolean()),
  tables: z.optional(
    z.record(
      name,
      z.union([z.literal('global'), z.literal('ignore'), tenantTable], {
        error: '"global", "ignore", or { via: [columns], unresolved: fail|delete|keep, conflicts: { column: fail|detach|delete|keep } }',
      }),
    ),
  ),
});

export interface TenancyOverrides {
  owner?: string;
  tenants?: string;
  key?: string;
}

/** The model a tenancy command works with: the config's, with the command line's flags over it. */
export function tenancyConfigFrom(fromFile: TenancyConfig | undefined, overrides: TenancyOverrides): TenancyConfig {
  const owner = overrides.owner ?? fromFile?.owner;
  if (!owner) {
    throw new UsageError('no tenancy model: which table\'s rows become tenants?', { hint: 'pass --owner TABLE (e.g. --owner users), or keep the model under "tenancy" in tenantify.config.json (`tenancy analyze --write` puts it there)' });
  }
  const model: TenancyConfig = { ...fromFile, owner };
  if (overrides.tenants) model.tenants = overrides.tenants;
  if (overrides.key) model.key = overrides.key;
  return model;
}
