/**
 * The tenant key's type, and the tables whose key column already exists with another one.
 * A `organization_id text` beside a bigint tenants key would make every comparison the plan
 * and `tenancy check` write fail (`operator does not exist: bigint = text`), so analyze and
 * scaffold refuse it up front, naming the table and both types. Pure.
 */
import { UsageError } from '../errors.js';
import type { Catalog, CatalogTable, TableName, TenancyAnalysis } from './types.js';

export interface KeyTypeMismatch {
  table: TableName;
  column: string;
  /** The column's type as it is. */
  type: string;
  /** The tenants table's key type. */
  expected: string;
}

/** The type every key column takes: the tenants table's primary key (bigint when the plan creates that table). */
export function tenantKeyType(analysis: TenancyAnalysis, catalog: Catalog): string {
  const tenants = analysis.tenantsExists || analysis.ownerIsTenants ? catalog.tables.find((t) => t.name === analysis.tenants) : undefined;
  const pk = tenants?.primaryKey?.length === 1 ? tenants.primaryKey[0] : undefined;
  return (pk && columnType(tenants as CatalogTable, pk)) ?? 'bigint';
}

/**
 * Owner and tenant tables whose key column exists with a type the key cannot be compared
 * with. The integer types compare with one another (and a foreign key accepts them), so
 * `integer` beside `bigint` is not a mismatch here.
 */
export function keyTypeMismatches(analysis: TenancyAnalysis, catalog: Catalog): KeyTypeMismatch[] {
  const expected = tenantKeyType(analysis, catalog);
  const byName = new Map(catalog.tables.map((t) => [t.name, t]));
  const found: KeyTypeMismatch[] = [];
  for (const a of analysis.tables) {
    if (a.role !== 'tenant' && a.role !== 'owner') continue;
    if (a.role === 'owner' && analysis.ownerIsTenants) continue;
    const table = byName.get(a.table);
    const type = table && columnType(table, analysis.key);
    if (type !== undefined && !comparable(type, expected)) found.push({ table: a.table, column: analysis.key, type, expected });
  }
  return found;
}

/** A UsageError (exit 2, `tenant-key-type-mismatch`) when any key column has the wrong type. */
export function ensureKeyTypes(analysis: TenancyAnalysis, catalog: Catalog): void {
  const found = keyTypeMismatches(analysis, catalog);
  const [first] = found;
  if (!first) return;
  const one = (m: KeyTypeMismatch): string => `${m.table}.${m.column} is ${m.type}, the tenants key (${analysis.tenants}) is ${m.expected}`;
  throw new UsageError(
    found.length === 1
      ? `the key column exists with another type: ${one(first)}`
      : `${found.length} key columns exist with another type: ${one(first)}`,
    {
      code: 'tenant-key-type-mismatch',
      hint: `change the column to ${first.expected} (or rename it and let the plan add ${first.column}), or choose another --key; nothing was written`,
      details: found.slice(1).map(one),
    },
  );
}

const integers = new Set(['smallint', 'integer', 'bigint']);

function comparable(a: string, b: string): boolean {
  return a === b || (integers.has(a) && integers.has(b));
}

function columnType(table: CatalogTable, column: string): string | undefined {
  return table.columns.find((c) => c.name === column)?.type;
}
