/**
 * What `tenancy check` looks at, from the catalog and the analysis: the owner and every
 * tenant table, each with its key column and the foreign keys it holds into another table
 * of the tenancy (self-references included). Pure: the rules read this and nothing else.
 */
import { UsageError } from '../errors.js';
import { noAccess, type Access } from './access.js';
import type { Catalog, CatalogForeignKey, CatalogTable, TableAnalysis, TableName, TenancyAnalysis, UnresolvedPolicy } from './types.js';
import { writtenName } from './sql-text.js';

export interface ScopedEdge {
  constraint: string;
  table: TableName;
  columns: string[];
  references: TableName;
  referencedColumns: string[];
  selfReference: boolean;
  validated: boolean;
  /** The key column of the referenced table (its primary key when it is the owner and the tenants table). */
  referencedKey: string;
  /** The foreign key pairs this table's key with the referenced table's key: no row can reference another tenant's. */
  includesKey: boolean;
  /** `tasks.assignee_id → users`: how findings name the edge. */
  label: string;
}

export interface ScopedTable {
  name: TableName;
  role: 'owner' | 'tenant';
  catalog: CatalogTable;
  analysis: TableAnalysis;
  /** The tenant key column of this table. */
  key: string;
  /** The key is this table's own primary key (the owner when it is the tenants table). */
  keyIsPrimaryKey: boolean;
  /** The key column exists. */
  hasKey: boolean;
  unresolved: UnresolvedPolicy;
  edges: ScopedEdge[];
  /**
   * A path of foreign keys reaches the owner. A table that carries the key column is a tenant
   * table all the same (every rule applies to it), but nothing derives or checks its key.
   */
  reached: boolean;
}

export interface CheckScope {
  analysis: TenancyAnalysis;
  catalog: Catalog;
  /** The tables checked, parents first. */
  tables: ScopedTable[];
  /** The tenants table and the column its keys name (its primary key). */
  tenants: { table: CatalogTable; column: string } | null;
  /** Every tenant table of the model and the owner, `--table` or not: what views and functions must not read past the policies. */
  tenantTables: Set<TableName>;
  /** Views, materialized views, SECURITY DEFINER functions, roles and the setting's defaults. */
  access: Access;
  /** `--as ROLE`: the application's role, when named. */
  appRole?: string;
}

export interface ScopeOptions {
  /** Only these tables (`--table`). */
  only?: string[] | undefined;
  access?: Access;
  appRole?: string | undefined;
}

export function buildScope(catalog: Catalog, analysis: TenancyAnalysis, options: ScopeOptions = {}): CheckScope {
  const only = options.only;
  const byName = new Map(catalog.tables.map((t) => [t.name, t]));
  const tenantsTable = byName.get(analysis.tenants);
  const tenantsColumn = tenantsTable?.primaryKey?.length === 1 ? tenantsTable.primaryKey[0] : undefined;
  if (tenantsTable && !tenantsColumn) {
    throw new UsageError(
      `the tenants table ${analysis.tenants} has ${tenantsTable.primaryKey ? 'a composite' : 'no'} primary key: a tenant key cannot name its rows`,
      { code: 'tenants-key-invalid', hint: 'give the tenants table a one-column primary key, or name another with --tenants' },
    );
  }
  if (!tenantsTable && !analysis.ownerIsTenants) {
    throw new UsageError(`the tenants table ${analysis.tenants} does not exist: the database has not been upgraded to this model`, {
      code: 'not-upgraded',
      hint: 'apply the plan `tenancy scaffold` wrote first, or name the tenants table with --tenants',
    });
  }
  const keyOf = (t: TableAnalysis, table: CatalogTable): { key: string; primary: boolean } =>
    t.role === 'owner' && analysis.ownerIsTenants
      ? { key: tenantsColumn ?? table.primaryKey?.[0] ?? analysis.key, primary: true }
      : { key: analysis.key, primary: false };

  // A table no path reaches that carries the key column holds tenant rows all the same.
  const carriesKey = (t: TableAnalysis): boolean =>
    t.role === 'global' && t.table !== analysis.tenants && (byName.get(t.table)?.columns.some((c) => c.name === analysis.key) ?? false);
  const unreached = new Set(analysis.tables.filter(carriesKey).map((t) => t.table));
  const inScope = analysis.tables.filter((t) => t.role === 'owner' || t.role === 'tenant' || unreached.has(t.table));
  const keys = new Map<TableName, string>();
  for (const t of inScope) {
    const table = byName.get(t.table);
    if (!table)
      throw new UsageError(`the model names ${t.table}, which the database does not have`, {
        code: 'model-table-missing',
        hint: 'check the model in tenantify.config.json against the database (`tenancy analyze`)',
      });
    keys.set(t.table, keyOf(t, table).key);
  }

  const selected = only?.length ? select(inScope, only) : inScope;
  const tables = selected.map((t): ScopedTable => {
    const table = byName.get(t.table) as CatalogTable;
    const { key, primary } = keyOf(t, table);
    return {
      name: t.table,
      role: t.role === 'owner' ? 'owner' : 'tenant',
      catalog: table,
      analysis: t,
      key,
      keyIsPrimaryKey: primary,
      hasKey: table.columns.some((c) => c.name === key),
      unresolved: t.unresolvedPolicy,
      edges: table.foreignKeys.filter((fk) => keys.has(fk.references)).map((fk) => edge(fk, key, keys.get(fk.references) as string)),
      reached: !unreached.has(t.table),
    };
  });
  return {
    analysis,
    catalog,
    tables,
    tenants: tenantsTable && tenantsColumn ? { table: tenantsTable, column: tenantsColumn } : null,
    tenantTables: new Set(keys.keys()),
    access: options.access ?? noAccess,
    ...(options.appRole ? { appRole: options.appRole } : {}),
  };
}

function edge(fk: CatalogForeignKey, key: string, referencedKey: string): ScopedEdge {
  const includesKey = fk.columns.some((c, i) => c === key && fk.referencedColumns[i] === referencedKey);
  return {
    constraint: fk.name,
    table: fk.table,
    columns: fk.columns,
    references: fk.references,
    referencedColumns: fk.referencedColumns,
    selfReference: fk.table === fk.references,
    validated: fk.validated,
    referencedKey,
    includesKey,
    label: `${shortName(fk.table)}.${fk.columns.length === 1 ? fk.columns[0] : `(${fk.columns.join(', ')})`} → ${shortName(fk.references)}`,
  };
}

/** `public.tasks` is `tasks` to a reader; other schemas keep their name. */
export function shortName(name: TableName): string {
  return writtenName(name);
}

function select(tables: TableAnalysis[], only: string[]): TableAnalysis[] {
  const named = (t: TableAnalysis, name: string): boolean =>
    t.table === name || shortName(t.table) === name || writtenName(t.table, false) === name;
  const unknown = only.filter((name) => !tables.some((t) => named(t, name)));
  if (unknown.length > 0) {
    throw new UsageError(`--table ${unknown.join(', ')}: not a tenant table of the model`, {
      code: 'table-not-tenant',
      hint: `tenant tables: ${tables.map((t) => shortName(t.table)).join(', ')}`,
    });
  }
  return tables.filter((t) => only.some((name) => named(t, name)));
}
