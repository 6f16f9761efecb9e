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
  setting: z.optional(
    z.string().check(z.regex(/^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_.]*$/, 'a custom setting name with a dot, e.g. app.tenant_id')),
  ),
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

function withoutPublic(name: string): string {
  return name.startsWith('public.') ? name.slice('public.'.length) : name;
}

export interface TenancyOverrides {
  owner?: string;
  tenants?: string;
  key?: string;
}

/**
 * The model a tenancy command works with: the config's, with the command line's flags over it.
 * An `--owner` other than the config's is another model: the config's per-table settings were
 * written for its owner, so they are left out, and `onNote` is told so.
 */
export function tenancyConfigFrom(
  fromFile: TenancyConfig | undefined,
  overrides: TenancyOverrides,
  onNote?: (note: string) => void,
): TenancyConfig {
  const owner = overrides.owner ?? fromFile?.owner;
  if (!owner) {
    throw new UsageError("no tenancy model: which table's rows become tenants?", {
      code: 'model-missing',
      hint: 'pass --owner TABLE (e.g. --owner users), or keep the model under "tenancy" in tenantify.config.json (`tenancy analyze --write` puts it there)',
    });
  }
  const model: TenancyConfig = { ...fromFile, owner };
  const configOwner = fromFile?.owner;
  if (
    overrides.owner &&
    configOwner &&
    withoutPublic(overrides.owner) !== withoutPublic(configOwner) &&
    fromFile.tables &&
    Object.keys(fromFile.tables).length > 0
  ) {
    delete model.tables;
    const n = Object.keys(fromFile.tables).length;
    onNote?.(
      `--owner ${overrides.owner} is not the config's owner (${configOwner}): its ${n} table setting${n === 1 ? '' : 's'} (tenancy.tables) ${n === 1 ? 'was' : 'were'} written for that model and ${n === 1 ? 'is' : 'are'} left out`,
    );
  }
  if (overrides.tenants) model.tenants = overrides.tenants;
  if (overrides.key) model.key = overrides.key;
  return model;
}
