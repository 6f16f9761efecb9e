/**
 * The catalog of a database, read in one pass over pg_catalog: a fixed handful of queries
 * whatever the number of tables (never one per table), so a schema of thousands of tables
 * reads in well under a second. Read-only; the caller owns the transaction.
 *
 * Partitions are left out: a partitioned table is one table, with its partitions' row
 * estimates summed and its direct partitions listed. Foreign keys PostgreSQL clones onto
 * partitions, or onto the referencing table per partition of a partitioned referenced table,
 * are left out too (conparentid); a foreign key declared on partitions themselves (a legacy
 * schema's, often on some partitions only) is the parent's, with the partitions that hold it.
 */
import type pg from 'pg';
import { UsageError } from '../errors.js';
import { tableName } from './sql-text.js';
import type {
  Catalog,
  CatalogCheck,
  CatalogColumn,
  CatalogDistribution,
  CatalogForeignKey,
  CatalogIndex,
  CatalogKey,
  CatalogPolicy,
  CatalogTable,
  CatalogView,
  PolicyCommand,
} from './types.js';

export interface ReadCatalogOptions {
  /** Only these schemas (default: every schema but the system ones and `excludeSchemas`). */
  schemas?: string[];
  /** Left out of the default (the ledger's schema). */
  excludeSchemas?: string[];
  /** Schemas whose names start so are left out of the default too (tenantify's own, one per source or unit). */
  excludePrefixes?: string[];
}

const systemSchema = /^(pg_catalog|information_schema|pg_toast|pg_temp_\d+|pg_toast_temp_\d+)$/;

const onDeleteWords: Record<string, string> = { a: 'no action', r: 'restrict', c: 'cascade', n: 'set null', d: 'set default' };
const policyCommands: Record<string, PolicyCommand> = { '*': 'all', r: 'select', a: 'insert', w: 'update', d: 'delete' };

export async function readCatalog(client: pg.ClientBase, options: ReadCatalogOptions = {}): Promise<Catalog> {
  const schemas = await chooseSchemas(client, options);
  // Each query below filters the same way: ordinary and partitioned tables, not partitions.
  const tablesOf = `SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p') AND NOT c.relispartition`;

  // One after the other: a pg client runs one query at a time anyway.
  const tables = await client.query<{
    oid: number;
    schema: string;
    table: string;
    relkind: string;
    rls: boolean;
    forced: boolean;
    rows: number;
    owner: string;
    comment: string | null;
  }>(
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS table, c.relkind::text AS relkind, obj_description(c.oid, 'pg_class') AS comment,
            c.relrowsecurity AS rls, c.relforcerowsecurity AS forced, pg_get_userbyid(c.relowner) AS owner,
            CASE WHEN c.relkind = 'p'
                 THEN coalesce((SELECT sum(greatest(p.reltuples, 0)) FROM pg_partition_tree(c.oid) t JOIN pg_class p ON p.oid = t.relid WHERE t.isleaf), 0)
                 ELSE greatest(c.reltuples, 0) END::float8 AS rows
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid IN (${tablesOf})`,
    [schemas],
  );
  const columns = await client.query<{
    oid: number;
    name: string;
    type: string;
    not_null: boolean;
    has_default: boolean;
    attnum: number;
    comment: string | null;
    identity: string;
  }>(
    `SELECT a.attrelid::int AS oid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, col_description(a.attrelid, a.attnum) AS comment,
            a.attidentity::text AS identity,
            a.attnotnull AS not_null, a.atthasdef AS has_default, a.attnum::int AS attnum
       FROM pg_attribute a
      WHERE a.attrelid IN (${tablesOf}) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attrelid, a.attnum`,
    [schemas],
  );
  // Column numbers, named below from the columns already read (no subquery per constraint).
  const constraints = await client.query<{
    oid: number;
    name: string;
    type: string;
    keys: number[];
    ref_oid: number;
    ref_schema: string | null;
    ref_table: string | null;
    ref_keys: number[] | null;
    validated: boolean;
    on_delete: string;
    definition: string;
  }>(
    `SELECT k.conrelid::int AS oid, k.conname AS name, k.contype::text AS type, k.conkey::int[] AS keys,
            k.confrelid::int AS ref_oid, rn.nspname AS ref_schema, rc.relname AS ref_table, k.confkey::int[] AS ref_keys,
            k.convalidated AS validated, k.confdeltype::text AS on_delete,
            pg_get_constraintdef(k.oid) AS definition
       FROM pg_constraint k
       LEFT JOIN pg_class rc ON rc.oid = k.confrelid
       LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
      WHERE k.conrelid IN (${tablesOf}) AND k.contype IN ('p', 'u', 'f', 'c') AND k.conparentid = 0
      ORDER BY k.conrelid, k.conname`,
    [schemas],
  );
  const indexes = await client.query<{
    oid: number;
    name: string;
    keys: number[];
    unique: boolean;
    valid: boolean;
    partial: boolean;
    definition: string;
    constraint: boolean;
  }>(
    `SELECT i.indrelid::int AS oid, c.relname AS name, (i.indkey::int2[])[0:i.indnkeyatts - 1]::int[] AS keys,
            i.indisunique AS unique, i.indisvalid AS valid, i.indpred IS NOT NULL AS partial,
            pg_get_indexdef(i.indexrelid) AS definition,
            EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x')) AS constraint
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid IN (${tablesOf})
      ORDER BY i.indrelid, c.relname`,
    [schemas],
  );
  const policies = await client.query<{
    oid: number;
    name: string;
    cmd: string;
    permissive: boolean;
    roles: string[];
    using: string | null;
    with_check: string | null;
  }>(
    `SELECT p.polrelid::int AS oid, p.polname AS name, p.polcmd::text AS cmd, p.polpermissive AS permissive,
            array(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END FROM unnest(p.polroles) r)::text[] AS roles,
            pg_get_expr(p.polqual, p.polrelid) AS using, pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
       FROM pg_policy p
      WHERE p.polrelid IN (${tablesOf})
      ORDER BY p.polrelid, p.polname`,
    [schemas],
  );
  const partitions = await client.query<{ parent: number; schema: string; table: string }>(
    `SELECT i.inhparent::int AS parent, n.nspname AS schema, c.relname AS table
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE i.inhparent IN (${tablesOf}) AND c.relispartition
      ORDER BY i.inhparent, n.nspname, c.relname`,
    [schemas],
  );
  // Foreign keys declared on a partition itself (not cloned from its parent): the parent's hops.
  const partitionKeys = await client.query<{
    parent: number;
    partition: string;
    name: string;
    columns: string[];
    ref_schema: string;
    ref_table: string;
    ref_columns: string[];
    validated: boolean;
    on_delete: string;
    definition: string;
  }>(
    `SELECT i.inhparent::int AS parent, format('%s.%s', n.nspname, c.relname) AS partition, k.conname AS name,
            array(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, o) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o) AS columns,
            rn.nspname AS ref_schema, rc.relname AS ref_table,
            array(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, o) JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.o) AS ref_columns,
            k.convalidated AS validated, k.confdeltype::text AS on_delete, pg_get_constraintdef(k.oid) AS definition
       FROM pg_constraint k
       JOIN pg_inherits i ON i.inhrelid = k.conrelid
       JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_class rc ON rc.oid = k.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
      WHERE i.inhparent IN (${tablesOf}) AND k.contype = 'f' AND k.conparentid = 0
      ORDER BY i.inhparent, n.nspname, c.relname, k.conname`,
    [schemas],
  );
  // Views and materialized views, with the relations their rule reads and whether their owner bypasses row level security.
  const views = await client.query<{
    schema: string;
    name: string;
    relkind: string;
    owner: string;
    bypass: boolean;
    invoker: string | null;
    reads: string[];
  }>(
    `SELECT n.nspname AS schema, v.relname AS name, v.relkind::text AS relkind, pg_get_userbyid(v.relowner) AS owner,
            (r.rolsuper OR r.rolbypassrls) AS bypass,
            (SELECT split_part(o, '=', 2) FROM unnest(v.reloptions) o WHERE split_part(o, '=', 1) = 'security_invoker') AS invoker,
            array(SELECT DISTINCT format('%s.%s', dn.nspname, dc.relname)
                    FROM pg_rewrite w JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid AND d.refclassid = 'pg_class'::regclass
                    JOIN pg_class dc ON dc.oid = d.refobjid JOIN pg_namespace dn ON dn.oid = dc.relnamespace
                   WHERE w.ev_class = v.oid AND d.refobjid <> v.oid)::text[] AS reads
       FROM pg_class v JOIN pg_namespace n ON n.oid = v.relnamespace JOIN pg_roles r ON r.oid = v.relowner
      WHERE n.nspname = ANY($1) AND v.relkind IN ('v', 'm')
      ORDER BY n.nspname, v.relname`,
    [schemas],
  );
  const server = (
    await client.query<{ version: number; extensions: string[] }>(
      `SELECT current_setting('server_version_num')::int AS version, array(SELECT extname FROM pg_extension ORDER BY extname)::text[] AS extensions`,
    )
  ).rows[0] as { version: number; extensions: string[] };
  // Citus's metadata, only where the extension is: pg_dist_partition does not exist elsewhere.
  const distributed = server.extensions.includes('citus')
    ? await client.query<{ oid: number; method: string; repmodel: string; column: string | null; colocation: number }>(
        `SELECT p.logicalrelid::oid::int AS oid, p.partmethod::text AS method, p.repmodel::text AS repmodel,
                CASE WHEN p.partkey IS NULL THEN NULL ELSE column_to_column_name(p.logicalrelid, p.partkey) END AS column,
                p.colocationid::int AS colocation
           FROM pg_dist_partition p
          WHERE p.logicalrelid::oid IN (${tablesOf})`,
        [schemas],
      )
    : undefined;

  const byOid = new Map<number, CatalogTable>();
  const attnames = new Map<number, Map<number, CatalogColumn>>();
  for (const row of tables.rows) {
    byOid.set(row.oid, {
      name: tableName(row.schema, row.table),
      schema: row.schema,
      table: row.table,
      kind: row.relkind === 'p' ? 'partitioned' : 'table',
      columns: [],
      primaryKey: null,
      uniques: [],
      foreignKeys: [],
      indexes: [],
      checks: [],
      rls: { enabled: row.rls, forced: row.forced },
      policies: [],
      estimatedRows: Math.round(row.rows),
      owner: row.owner,
      ...(row.comment === null ? {} : { comment: row.comment }),
    });
    attnames.set(row.oid, new Map());
  }
  for (const row of columns.rows) {
    const column: CatalogColumn = {
      name: row.name,
      type: row.type,
      notNull: row.not_null,
      hasDefault: row.has_default,
      ...(row.comment === null ? {} : { comment: row.comment }),
      ...(row.identity === 'a' ? { identity: 'always' as const } : row.identity === 'd' ? { identity: 'by default' as const } : {}),
    };
    byOid.get(row.oid)?.columns.push(column);
    attnames.get(row.oid)?.set(row.attnum, column);
  }
  // Tables referenced from outside the schemas read: their columns' names, in one query.
  const outside = [...new Set(constraints.rows.filter((r) => r.type === 'f' && !attnames.has(r.ref_oid)).map((r) => r.ref_oid))];
  if (outside.length > 0) {
    const { rows } = await client.query<{ oid: number; attnum: number; name: string }>(
      'SELECT attrelid::int AS oid, attnum::int AS attnum, attname AS name FROM pg_attribute WHERE attrelid = ANY($1::oid[]) AND attnum > 0',
      [outside],
    );
    for (const r of rows) {
      if (!attnames.has(r.oid)) attnames.set(r.oid, new Map());
      attnames.get(r.oid)?.set(r.attnum, { name: r.name, type: '', notNull: false, hasDefault: false });
    }
  }
  const named = (oid: number, keys: number[] | null): string[] => (keys ?? []).map((n) => attnames.get(oid)?.get(n)?.name ?? `#${n}`);
  for (const raw of constraints.rows) {
    const table = byOid.get(raw.oid);
    if (!table) continue;
    const row = { ...raw, columns: named(raw.oid, raw.keys), ref_columns: named(raw.ref_oid, raw.ref_keys) };
    if (row.type === 'p') {
      table.primaryKey = row.columns;
      table.uniques.push({ name: row.name, kind: 'primary', columns: row.columns, definition: row.definition } satisfies CatalogKey);
    } else if (row.type === 'u') {
      table.uniques.push({ name: row.name, kind: 'unique', columns: row.columns, definition: row.definition });
    } else if (row.type === 'c') {
      table.checks.push({ name: row.name, definition: row.definition, validated: row.validated } satisfies CatalogCheck);
    } else {
      const notNull = row.columns.every((name) => table.columns.find((c) => c.name === name)?.notNull === true);
      table.foreignKeys.push({
        name: row.name,
        table: table.name,
        columns: row.columns,
        references: tableName(row.ref_schema ?? '', row.ref_table ?? ''),
        referencedColumns: row.ref_columns ?? [],
        validated: row.validated,
        notNull,
        onDelete: onDeleteWords[row.on_delete] ?? row.on_delete,
        definition: row.definition,
      } satisfies CatalogForeignKey);
    }
  }
  // The primary key first among the keys, then the unique constraints by name.
  for (const table of byOid.values())
    table.uniques.sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'primary' ? -1 : 1));
  for (const row of indexes.rows) {
    const names = attnames.get(row.oid);
    byOid.get(row.oid)?.indexes.push({
      name: row.name,
      columns: row.keys.map((n) => (n === 0 ? null : (names?.get(n)?.name ?? null))),
      unique: row.unique,
      valid: row.valid,
      partial: row.partial,
      definition: row.definition,
      constraint: row.constraint,
    } satisfies CatalogIndex);
  }
  for (const row of partitions.rows) {
    const table = byOid.get(row.parent);
    if (table) (table.partitions ??= []).push({ name: `${row.schema}.${row.table}`, foreignKeys: [] });
  }
  for (const row of partitionKeys.rows) {
    const table = byOid.get(row.parent);
    if (!table) continue;
    const references = `${row.ref_schema}.${row.ref_table}`;
    table.partitions?.find((p) => p.name === row.partition)?.foreignKeys.push(row.name);
    const same = table.foreignKeys.find(
      (fk) =>
        fk.partitions &&
        fk.references === references &&
        fk.columns.join() === row.columns.join() &&
        fk.referencedColumns.join() === row.ref_columns.join(),
    );
    if (same) {
      same.partitions?.push({ table: row.partition, name: row.name });
      same.validated &&= row.validated;
      continue;
    }
    table.foreignKeys.push({
      name: row.name,
      table: table.name,
      columns: row.columns,
      references,
      referencedColumns: row.ref_columns,
      validated: row.validated,
      notNull: row.columns.every((name) => table.columns.find((c) => c.name === name)?.notNull === true),
      onDelete: onDeleteWords[row.on_delete] ?? row.on_delete,
      definition: row.definition,
      partitions: [{ table: row.partition, name: row.name }],
    } satisfies CatalogForeignKey);
  }
  // A foreign key some partitions lack proves nothing of the rows of those: it counts as not validated.
  for (const table of byOid.values()) {
    for (const fk of table.foreignKeys) if (fk.partitions && fk.partitions.length < (table.partitions?.length ?? 0)) fk.validated = false;
  }
  if (distributed) {
    for (const table of byOid.values()) table.distribution = null;
    for (const row of distributed.rows) {
      const table = byOid.get(row.oid);
      if (table)
        table.distribution = {
          method: distributionMethod(row.method, row.repmodel),
          column: row.column,
          colocationId: row.colocation,
        } satisfies CatalogDistribution;
    }
  }
  for (const row of policies.rows) {
    byOid.get(row.oid)?.policies.push({
      name: row.name,
      command: policyCommands[row.cmd] ?? 'all',
      permissive: row.permissive,
      roles: row.roles,
      using: row.using,
      withCheck: row.with_check,
    } satisfies CatalogPolicy);
  }

  return {
    tables: [...byOid.values()].sort((a, b) => compareNames(a.name, b.name)),
    schemas,
    extensions: server.extensions,
    views: views.rows.map(
      (r) =>
        ({
          name: `${r.schema}.${r.name}`,
          kind: r.relkind === 'm' ? 'materialized' : 'view',
          owner: r.owner,
          ownerBypassesRls: r.bypass,
          securityInvoker: r.invoker === null ? null : ['on', 'true', '1', 'yes'].includes(r.invoker.toLowerCase()),
          reads: r.reads.sort(compareNames),
        }) satisfies CatalogView,
    ),
    serverVersion: server.version,
  };
}

async function chooseSchemas(client: pg.ClientBase, options: ReadCatalogOptions): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>('SELECT nspname AS name FROM pg_namespace ORDER BY nspname');
  const existing = rows.map((r) => r.name);
  if (options.schemas && options.schemas.length > 0) {
    const present = new Set(existing);
    const unknown = options.schemas.filter((s) => !present.has(s));
    if (unknown.length > 0) {
      throw new UsageError(`no schema named ${unknown.join(', ')} in this database`, {
        code: 'schema-not-found',
        hint: `schemas here: ${existing.filter((s) => !systemSchema.test(s)).join(', ')}`,
      });
    }
    return [...new Set(options.schemas)];
  }
  const excluded = new Set(options.excludeSchemas ?? []);
  const prefixes = options.excludePrefixes ?? [];
  return existing.filter((s) => !systemSchema.test(s) && !excluded.has(s) && !prefixes.some((p) => s.startsWith(p)));
}

/** pg_dist_partition.partmethod (and repmodel, which tells a reference table from a Citus local one) as a word. */
function distributionMethod(method: string, repmodel: string): CatalogDistribution['method'] {
  if (method === 'h') return 'hash';
  if (method === 'a') return 'append';
  if (method === 'r') return 'range';
  return repmodel === 't' ? 'reference' : 'local';
}

/** Byte order, so the order does not depend on the machine's locale. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
