/**
 * What the scaffold needs to know of the schema, read from the analysis and the catalog
 * once: each tenant table's primary key, where its key comes from, the key's type. Pure.
 */
import { UsageError } from '../../errors.js';
import { quoteIdent, quoteQualified, splitTableName } from '../sql-text.js';
import type { Catalog, CatalogTable, Hop, TableAnalysis, TableName, TenancyAnalysis } from '../types.js';
import { uniqueNotNullColumn } from '../graph.js';
import { hash } from './names.js';

export interface ScaffoldOptions {
  composite: boolean;
  rls: boolean;
  /** Place the tenancy on Citus (step 8); its keys become composite there, so step 6 is left out. */
  citus?: boolean;
}

/** A table the plan gives the key: the owner (unless it is the tenants table) and every tenant table. */
export interface KeyedTable {
  name: TableName;
  analysis: TableAnalysis;
  catalog: CatalogTable;
  /** The column that holds the tenant key on this table. */
  keyColumn: string;
  /** The plan adds the key column (false: it is there already, e.g. the owner's own id). */
  addsKey: boolean;
  /**
   * What the backfill's batches walk: the first primary key column (keyset), else a unique
   * NOT NULL column, else `ctid` (physical ranges of blocks, exec/block-ranges.ts).
   */
  batchKey: string;
  /** A partitioned table's partitions (empty for an ordinary table): built and backfilled one by one. */
  partitions: TableName[];
  /** Columns that identify a row in violation listings and kept copies. */
  rowId: string[];
  isOwner: boolean;
}

/** The batch key that walks a table by physical ranges of blocks (`batch <table> key=ctid`, exec/block-ranges.ts). */
export const physicalKey = 'ctid';

export class ScaffoldModel {
  readonly tables = new Map<TableName, CatalogTable>();
  readonly analyses = new Map<TableName, TableAnalysis>();
  readonly keyed: KeyedTable[];
  readonly ownerPk: string;
  readonly keyType: string;
  /** The tenants table is created by the plan. */
  readonly createsTenants: boolean;
  readonly legacyColumn: string;
  /** The tenants table's primary key column. */
  readonly tenantsPk: string;
  /** `organizations (id)`: what every key's foreign key references. */
  readonly tenantsTarget: string;
  /** A table's part of unit file names, distinct for names that fold alike (tableSlugs). */
  readonly slug: (name: TableName) => string;

  constructor(
    readonly analysis: TenancyAnalysis,
    catalog: Catalog,
    readonly options: ScaffoldOptions,
  ) {
    for (const t of catalog.tables) this.tables.set(t.name, t);
    this.slug = tableSlugs(catalog.tables.flatMap((t) => [t.name, ...(t.partitions ?? []).map((p) => p.name)]));
    for (const t of analysis.tables) this.analyses.set(t.table, t);
    const owner = this.table(analysis.owner);
    if (!owner.primaryKey || owner.primaryKey.length !== 1) {
      throw new UsageError(`the owner ${analysis.owner} needs a single-column primary key: one tenant per row is found through it`, {
        code: 'owner-key-invalid',
        hint: 'add a primary key to the owner table first, or choose another --owner',
      });
    }
    this.ownerPk = owner.primaryKey[0] as string;
    const ownerTable = bare(analysis.owner);
    this.legacyColumn = `legacy_${ownerTable}_id`;
    this.createsTenants = !analysis.ownerIsTenants && !analysis.tenantsExists;
    if (analysis.ownerIsTenants) {
      this.keyType = columnType(owner, this.ownerPk);
    } else if (analysis.tenantsExists) {
      const tenants = this.table(analysis.tenants);
      if (!tenants.columns.some((c) => c.name === this.legacyColumn) || tenants.primaryKey?.length !== 1) {
        throw new UsageError(
          `${analysis.tenants} exists but has no ${this.legacyColumn} column: the plan cannot tell which tenant each ${analysis.owner} row belongs to`,
          {
            code: 'tenants-legacy-column-missing',
            hint: `add ${this.legacyColumn} (unique, the ${analysis.owner} id of each tenant) to ${analysis.tenants}, or pass --tenants with a new table's name and let the plan create it`,
          },
        );
      }
      this.keyType = columnType(tenants, tenants.primaryKey[0] as string);
    } else {
      this.keyType = 'bigint';
    }

    this.tenantsPk = this.createsTenants
      ? 'id'
      : analysis.ownerIsTenants
        ? this.ownerPk
        : (this.table(analysis.tenants).primaryKey?.[0] as string);
    this.tenantsTarget = `${quoteQualified(analysis.tenants)} (${quoteIdent(this.tenantsPk)})`;
    const keyed: KeyedTable[] = [];
    for (const a of analysis.tables) {
      if (a.role !== 'owner' && a.role !== 'tenant') continue;
      const t = this.table(a.table);
      const isOwner = a.role === 'owner';
      const keyColumn = isOwner && analysis.ownerIsTenants ? this.ownerPk : analysis.key;
      const addsKey = !t.columns.some((c) => c.name === keyColumn);
      const pk = t.primaryKey ?? [];
      const unique = uniqueNotNullColumn(t);
      keyed.push({
        name: a.table,
        analysis: a,
        catalog: t,
        keyColumn,
        addsKey,
        batchKey: pk[0] ?? unique ?? physicalKey,
        partitions: (t.partitions ?? []).map((p) => p.name),
        rowId: pk.length > 0 ? pk : unique ? [unique] : t.columns.map((c) => c.name),
        isOwner,
      });
    }
    const names = new Set(keyed.map((k) => k.name));
    this.keyed = orderByParentsRead(keyed, (t) => this.parentsRead(t).filter((name) => names.has(name)));
  }

  /**
   * The other tables a row of `t` reads its key from: the first hop of its derivation and
   * of every fallback (the COALESCE of its trigger and its backfill).
   */
  parentsRead(t: KeyedTable): TableName[] {
    return [...new Set(this.firstHops(t).map((h) => h.references))].filter((name) => name !== t.name);
  }

  table(name: TableName): CatalogTable {
    const t = this.tables.get(name);
    if (!t)
      throw new UsageError(`the tenancy model names ${name}, which the catalog does not have`, {
        code: 'model-table-missing',
        hint: 'check the table names in the model, or the schemas read (--schema)',
      });
    return t;
  }

  /** The keyed table of that name, when the plan keys it. */
  keyedTable(name: TableName): KeyedTable | undefined {
    return this.keyed.find((k) => k.name === name);
  }

  /** The column of `table` holding the tenant key (the owner's id when the owner is the tenants table). */
  keyColumnOf(name: TableName): string {
    if (name === this.analysis.owner && this.analysis.ownerIsTenants) return this.ownerPk;
    return this.analysis.key;
  }

  /** First hops of the derivation and its fallbacks, each foreign key once, in order. */
  firstHops(t: KeyedTable): Hop[] {
    const hops: Hop[] = [];
    for (const path of [t.analysis.via, ...t.analysis.fallbacks]) {
      const hop = path[0];
      if (hop && !hops.some((h) => h.constraint === hop.constraint)) hops.push(hop);
    }
    return hops;
  }
}

/**
 * The keyed tables in an order where every table comes after each parent it reads its key
 * from, fallbacks included: a key trigger may only read key columns that exist when it is
 * created, and a backfill runs once every parent it may read is filled. Ties keep the
 * analysis' order (depth, then name). A cycle among them (A falls back to B, B to A) has
 * no such order: a usage error naming the tables, before anything is written.
 */
export function orderByParentsRead(tables: KeyedTable[], parentsRead: (t: KeyedTable) => TableName[]): KeyedTable[] {
  const ordered: KeyedTable[] = [];
  const placed = new Set<TableName>();
  const left = [...tables];
  while (left.length > 0) {
    const ready = left.findIndex((t) => parentsRead(t).every((p) => placed.has(p)));
    if (ready < 0) {
      const cycle = left.map(
        (t) =>
          `${t.name} reads ${parentsRead(t)
            .filter((p) => !placed.has(p))
            .join(', ')}`,
      );
      throw new UsageError(
        `the tables ${left.map((t) => t.name).join(', ')} read their tenant key from each other (through their paths or fallbacks): no order fills every parent before its children`,
        {
          code: 'derivation-cycle',
          details: cycle,
          hint: 'give one of these tables a "via" in tenancy.tables that does not pass through the others (its fallbacks then follow that path)',
        },
      );
    }
    const [t] = left.splice(ready, 1) as [KeyedTable];
    ordered.push(t);
    placed.add(t.name);
  }
  return ordered;
}

function columnType(table: CatalogTable, column: string): string {
  const type = table.columns.find((c) => c.name === column)?.type;
  if (!type) throw new UsageError(`${table.name} has no column ${column}`, { code: 'column-not-found' });
  // serial columns read as integer/bigint already; a key takes the plain type.
  return type;
}

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

export { pgName } from './names.js';

/** The table's own name, without the schema. */
export function bare(name: TableName): string {
  return splitTableName(name).table;
}

/** The schema part of a table name. */
export function schemaOf(name: TableName): string {
  return splitTableName(name).schema ?? 'public';
}

/** A name in the table's schema, as SQL text (functions live beside their table). */
export function qualifiedIn(table: TableName, name: string): string {
  return `${quoteIdent(schemaOf(table))}.${quoteIdent(name)}`;
}

/** Part of a unit's file name: lower-case words. */
export function slug(name: TableName): string {
  const schema = schemaOf(name);
  return words(schema === 'public' ? bare(name) : `${schema}_${bare(name)}`);
}

/**
 * Each table's part of unit file names (`slug`), distinct: names that fold to the same
 * words (`"Order"` and `order`, `teamMember` and `team_member`, `a.b_c` and `a_b.c`) would
 * give two tables' units one name. A table whose words are not its own name as written
 * then carries a hash of that name: `order_account_id` and `order_0a1b2c3d_account_id`.
 */
export function tableSlugs(names: Iterable<TableName>): (name: TableName) => string {
  const tables = new Map<TableName, string>();
  const count = new Map<string, number>();
  for (const name of names) {
    if (tables.has(name)) continue;
    const folded = slug(name);
    tables.set(name, folded);
    count.set(folded, (count.get(folded) ?? 0) + 1);
  }
  return (name) => {
    const folded = tables.get(name) ?? slug(name);
    const schema = schemaOf(name);
    const plain = (schema === 'public' ? bare(name) : `${schema}_${bare(name)}`) === folded;
    return (count.get(folded) ?? 0) > 1 && !plain ? `${folded}_${hash(name)}` : folded;
  };
}

/** A name as lower-case words joined by `_`: `teamMember` → `team_member`. */
export function words(text: string): string {
  return text
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_|_$/g, '');
}

export const q = quoteIdent;
export const qt = quoteQualified;
