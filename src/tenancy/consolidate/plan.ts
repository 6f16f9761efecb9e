/**
 * `tenancy consolidate`'s pure core: the reference shape and the sources in, the plan's
 * units as SQL text out.
 *
 *   1. one migration creates the tenants table, the shared tables (the key first in every
 *      primary key, unique constraint, index and foreign key between them), and under
 *      `--ids remap` the tables that map every source's old ids to the new ones;
 *   2. one backfill per source: its tenant row, then its tables in foreign-key order, each
 *      copied by the server (`INSERT ... SELECT`) in key ranges, one statement per range.
 *      A schema source's unit is one REPEATABLE READ transaction: every statement and the
 *      verify sections read the source as of one snapshot, and a killed run leaves nothing of
 *      the tenant (apply again copies it whole: no row twice). `--freeze` locks the source's
 *      tables against writes first. A source database is staged (one snapshot, all or
 *      nothing) and copied from there, statement by statement, each written so that running
 *      it again adds nothing. Verify sections compare every table's row count and content
 *      hash with the source's; the rollback deletes exactly that tenant's rows.
 */
import { UsageError } from '../../errors.js';
import { quoteIdent as q, quoteLiteral, quoteQualified } from '../sql-text.js';
import type { CatalogForeignKey } from '../types.js';
import type { SourceShape, SourceTable } from './shape.js';
import { withoutSchema } from './shape.js';

export type IdsMode = 'keep' | 'remap';

export interface ConsolidateSource {
  /** The source's name: its schema. */
  name: string;
  schema: string;
  /** Its row in the tenants table. */
  tenantId: number;
  /** Per table: the upper bounds of its key ranges (ascending, as text), one statement each plus an open last one. */
  bounds: Record<string, string[]>;
  /**
   * A source database (`--from-databases`): `schema` is then its staging schema in the target,
   * this the schema of the source database that holds its tables and the sources file's path
   * relative to the unit's file.
   */
  database?: { schema: string; sourcesPath: string };
  /** Its rows and the size of its tables when the plan was written (progress of a `--parallel` copy). */
  rows?: number;
  /** Its rows per table when the plan was written: a table of more than `analyzeFrom` rows gets its statistics during the copy. */
  tableRows?: Record<string, number>;
  bytes?: number;
}

export interface ConsolidateOptions {
  /** The schema of the shared tables. */
  into: string;
  /** The tenants table (bare name, in `into`). */
  tenants: string;
  key: string;
  ids: IdsMode;
  /** The schema of the id mapping tables (`--ids remap`). */
  idsSchema: string;
  /** `--freeze`: the application's writes to a source wait while it is copied. */
  freeze?: boolean | undefined;
  /** `--parallel N` (schema sources): one unit copies N sources at a time, with progress across them; each source's own unit verifies it and is its rollback. */
  parallel?: number | undefined;
  /** `--citus` (schema sources, `--ids keep`): the shared tables distributed by the key and colocated; the tenants and lookup tables reference tables. */
  citus?: boolean | undefined;
}

export interface ConsolidateUnit {
  name: string;
  kind: 'migration' | 'backfill';
  /** A source database's unit is TypeScript (it reaches another database); the others are SQL. */
  format: 'sql' | 'ts';
  summary: string;
  sql: string;
  rollback: string;
  /** The source a backfill copies (none for the migration). */
  source?: string;
}

/** What the plan knows of one reference table. */
interface TablePlan {
  ref: SourceTable;
  name: string;
  target: string;
  /** Its primary key gets new ids (`--ids remap`): a single integer column with a sequence. */
  remapped: boolean;
  /** The foreign keys to itself: filled in a second pass, once every row of the table is there. */
  selfColumns: string[];
  /** Column → the table whose remapped id it holds. */
  remappedRefs: Map<string, string>;
  /** The first column of the primary key: the key ranges walk it. */
  rangeColumn: string;
  rangeNumeric: boolean;
}

export function consolidatePlan(reference: SourceShape, sources: ConsolidateSource[], options: ConsolidateOptions): ConsolidateUnit[] {
  const tables = orderTables(reference);
  const plans = planTables(tables, options);
  const shared = sharedTablesUnit(plans, reference, sources, options);
  if (options.parallel !== undefined && !sources.some((s) => s.database))
    return [shared, parallelCopyUnit(plans, sources, options), ...sources.map((s) => copiedSourceUnit(plans, s, options))];
  return [shared, ...sources.map((s) => sourceUnit(plans, s, options))];
}

const integerTypes = new Set(['smallint', 'integer', 'bigint']);

/** A source table of this many rows or more gets its statistics during the copy (below, a join looping over its rows costs little). */
export const analyzeFrom = 1000;

function planTables(tables: SourceTable[], options: ConsolidateOptions): TablePlan[] {
  const names = new Set(tables.map((t) => t.catalog.name));
  const remapped = new Set<string>();
  for (const t of tables) {
    const pk = t.catalog.primaryKey;
    if (!pk || pk.length === 0) {
      throw new UsageError(`${t.catalog.name} has no primary key: tenancy consolidate copies by key ranges and needs one`, {
        code: 'consolidate-no-primary-key',
        hint: `add a primary key to ${t.catalog.table} in every source, or --exclude the sources that lack it`,
      });
    }
    const column = t.catalog.columns.find((c) => c.name === pk[0]);
    if (
      options.ids === 'remap' &&
      pk.length === 1 &&
      column &&
      integerTypes.has(column.type) &&
      (column.identity || /^nextval\(/.test(t.defaults[column.name] ?? ''))
    )
      remapped.add(t.catalog.name);
  }
  return tables.map((t) => {
    const pk = t.catalog.primaryKey as string[];
    const inside = t.catalog.foreignKeys.filter((f) => names.has(f.references));
    const selfColumns = inside.filter((f) => f.references === t.catalog.name).flatMap((f) => f.columns);
    for (const column of selfColumns) {
      if (t.catalog.columns.find((c) => c.name === column)?.notNull) {
        throw new UsageError(
          `${t.catalog.name}.${column} references its own table and is NOT NULL: the rows cannot arrive before the rows they reference`,
          { code: 'consolidate-self-reference-not-null' },
        );
      }
    }
    const remappedRefs = new Map<string, string>();
    for (const f of inside) {
      if (!remapped.has(f.references)) continue;
      if (f.columns.length !== 1) {
        throw new UsageError(`${t.catalog.name}: the foreign key ${f.name} has several columns and one of them holds a remapped id`, {
          code: 'consolidate-remap-composite-reference',
          hint: 'use --ids keep for this shape',
        });
      }
      remappedRefs.set(f.columns[0] as string, f.references);
    }
    const rangeColumn = pk[0] as string;
    const rangeType = t.catalog.columns.find((c) => c.name === rangeColumn)?.type ?? '';
    return {
      ref: t,
      name: t.catalog.table,
      target: `${options.into}.${t.catalog.table}`,
      remapped: remapped.has(t.catalog.name),
      selfColumns,
      remappedRefs,
      rangeColumn,
      rangeNumeric: integerTypes.has(rangeType) || /^numeric/.test(rangeType),
    };
  });
}

/** The tables parents first (Kahn's order, ties by name); a cycle between tables cannot be copied table by table. */
export function orderTables(reference: SourceShape): SourceTable[] {
  const byName = new Map(reference.tables.map((t) => [t.catalog.name, t]));
  const parents = new Map(
    reference.tables.map((t) => [
      t.catalog.name,
      new Set(t.catalog.foreignKeys.map((f) => f.references).filter((r) => r !== t.catalog.name && byName.has(r))),
    ]),
  );
  const done: SourceTable[] = [];
  const placed = new Set<string>();
  while (placed.size < byName.size) {
    const ready = [...parents]
      .filter(([name, ps]) => !placed.has(name) && [...ps].every((p) => placed.has(p)))
      .map(([name]) => name)
      .sort();
    if (ready.length === 0) {
      const left = [...byName.keys()].filter((n) => !placed.has(n));
      throw new UsageError(`the foreign keys of ${left.join(', ')} form a cycle: tenancy consolidate copies tables parents first`, {
        code: 'consolidate-foreign-key-cycle',
        hint: 'exclude one table of the cycle, or drop one of its foreign keys in every source first',
      });
    }
    for (const name of ready) {
      placed.add(name);
      done.push(byName.get(name) as SourceTable);
    }
  }
  return done;
}

// ---------------------------------------------------------------------------------------
// 1. the shared tables
// ---------------------------------------------------------------------------------------

function sharedTablesUnit(
  plans: TablePlan[],
  reference: SourceShape,
  sources: ConsolidateSource[],
  options: ConsolidateOptions,
): ConsolidateUnit {
  const tenants = quoteQualified(`${options.into}.${options.tenants}`);
  const key = q(options.key);
  const lines: string[] = [
    `-- The shared tables of the consolidation: ${sources.length} source${sources.length === 1 ? '' : 's'} (${sources.map((s) => s.name).join(', ')}) of the shape of ${reference.schema}.`,
    options.citus
      ? '-- Safe on a live database: every table here is new; only the lookup tables made reference tables below are held against writes while they are copied to every node.'
      : '-- Safe on a live database: every table here is new, so nothing the application uses is locked.',
    `-- Every key starts with ${options.key}: ids of different sources may be equal (${options.ids === 'keep' ? '--ids keep: they are kept' : '--ids remap: they get new ones'}),`,
    "-- and a foreign key between two shared tables includes the key, so no row can reference another tenant's.",
    '-- tenantify:snapshot none',
    '',
  ];
  if (options.into !== 'public') lines.push(`CREATE SCHEMA IF NOT EXISTS ${q(options.into)};`, '');
  lines.push(
    `-- One tenant per source; consolidated_from says which. The ids are the plan's (1..${sources.length}); the`,
    `-- application's next tenant takes the one after.`,
    `CREATE TABLE ${tenants} (`,
    `  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,`,
    `  name text NOT NULL,`,
    `  consolidated_from text NOT NULL`,
    `);`,
    `SELECT setval(pg_get_serial_sequence(${quoteLiteral(quoteQualified(`${options.into}.${options.tenants}`))}, 'id'), ${Math.max(1, sources.length)});`,
    '',
  );
  for (const p of plans) lines.push(...createTable(p, plans, options), '');
  if (options.ids === 'remap') {
    lines.push(
      `-- Old id → new id per tenant and table: the copies read them, the rollback and the verifies too, and the application may use them to redirect old links.`,
    );
    lines.push(`CREATE SCHEMA ${q(options.idsSchema)};`);
    for (const p of plans.filter((x) => x.remapped)) {
      const type = columnType(p, p.rangeColumn);
      lines.push(
        `CREATE TABLE ${mapTable(p, options)} (`,
        `  ${key} bigint NOT NULL REFERENCES ${tenants} (id),`,
        `  old_id ${type} NOT NULL,`,
        `  new_id ${type} NOT NULL,`,
        `  PRIMARY KEY (${key}, old_id),`,
        `  UNIQUE (${key}, new_id)`,
        `);`,
      );
    }
    lines.push('');
  }
  if (options.citus) lines.push(...citusPlacement(plans, options));
  const lookups = options.citus ? lookupTables(plans) : [];
  const rollback = [
    '-- Drops what the consolidation created, children first (the sources are untouched).',
    '-- tenantify:snapshot none',
    '',
    ...(options.ids === 'remap' ? [`DROP SCHEMA ${q(options.idsSchema)} CASCADE;`] : []),
    ...[...plans].reverse().map((p) => `DROP TABLE ${quoteQualified(p.target)};`),
    `DROP TABLE ${tenants};`,
    ...(options.into !== 'public' ? [`DROP SCHEMA ${q(options.into)};`] : []),
    ...(lookups.length > 0
      ? [
          '',
          '-- --citus: the lookup tables plain tables again. undistribute_table cascades through the foreign keys to the tables',
          '-- Citus had added to its metadata with them (the sources reference them), so one call may have done the next one.',
          ...lookups.map(
            (t) =>
              `SELECT undistribute_table(${quoteLiteral(quoteQualified(t))}, cascade_via_foreign_keys => true) FROM pg_dist_partition WHERE logicalrelid = ${quoteLiteral(quoteQualified(t))}::regclass;`,
          ),
        ]
      : []),
    '',
  ];
  return {
    name: 'consolidate_shared_tables',
    kind: 'migration',
    format: 'sql',
    summary: `${plans.length} shared tables in ${options.into} and the tenants table ${options.tenants}`,
    sql: lines.join('\n'),
    rollback: rollback.join('\n'),
  };
}

function createTable(p: TablePlan, plans: TablePlan[], options: ConsolidateOptions): string[] {
  const t = p.ref.catalog;
  const key = q(options.key);
  const tenants = quoteQualified(`${options.into}.${options.tenants}`);
  // --citus: no foreign key here; they are added once every table is placed (citusPlacement).
  const body: string[] = [`  ${key} bigint NOT NULL${options.citus ? '' : ` REFERENCES ${tenants} (id)`}`];
  for (const c of t.columns) {
    let column = `  ${q(c.name)} ${c.type}`;
    const def = p.ref.defaults[c.name];
    const sequenced = c.identity !== undefined || /^nextval\(/.test(def ?? '');
    if (sequenced && c.name === p.rangeColumn && (t.primaryKey?.length ?? 0) === 1)
      column += ` GENERATED BY DEFAULT AS IDENTITY (SEQUENCE NAME ${sequenceName(p)})`;
    else if (def !== undefined && !sequenced) column += ` DEFAULT ${withoutSchema(def, t.schema)}`;
    if (c.notNull) column += ' NOT NULL';
    body.push(column);
  }
  for (const u of t.uniques)
    body.push(
      `  CONSTRAINT ${q(u.name)} ${u.kind === 'primary' ? 'PRIMARY KEY' : 'UNIQUE'} (${[options.key, ...u.columns].map(q).join(', ')})`,
    );
  for (const c of t.checks) body.push(`  CONSTRAINT ${q(c.name)} ${withoutSchema(c.definition, t.schema)}`);
  if (!options.citus) for (const f of t.foreignKeys) body.push(`  CONSTRAINT ${q(f.name)} ${foreignKey(f, plans, options)}`);
  const lines = [`CREATE TABLE ${quoteQualified(p.target)} (`, body.join(',\n'), ');'];
  const indexes = t.indexes.filter((x) => !x.constraint && x.definition);
  for (const i of indexes) lines.push(`${indexWithKey(i.definition as string, p, options)};`);
  // A foreign key between shared tables gets an index: deleting a tenant's parent rows (its
  // rollback) would otherwise scan the child table once per row.
  const covered = [
    ...t.uniques.map((u) => u.columns),
    ...indexes.filter((i) => /USING btree/.test(i.definition ?? '')).map((i) => i.columns),
  ];
  for (const f of t.foreignKeys.filter((x) => plans.some((o) => o.ref.catalog.name === x.references))) {
    if (covered.some((columns) => f.columns.every((c, n) => columns[n] === c))) continue;
    covered.push(f.columns);
    const name = `${t.table}_${[options.key, ...f.columns].join('_')}_idx`;
    lines.push(
      `CREATE INDEX ${q(truncateBytes(name, 63))} ON ${quoteQualified(p.target)} (${[options.key, ...f.columns].map(q).join(', ')});`,
    );
  }
  return lines;
}

/** A foreign key to another shared table includes the key; one to a table outside the sources (shared lookup data) stays as it was. */
function foreignKey(f: CatalogForeignKey, plans: TablePlan[], options: ConsolidateOptions): string {
  const parent = plans.find((p) => p.ref.catalog.name === f.references);
  const onDelete =
    f.onDelete === 'no action'
      ? ''
      : f.onDelete === 'set null' || f.onDelete === 'set default'
        ? ` ON DELETE ${f.onDelete.toUpperCase()} (${f.columns.map(q).join(', ')})`
        : ` ON DELETE ${f.onDelete.toUpperCase()}`;
  if (!parent)
    return `FOREIGN KEY (${f.columns.map(q).join(', ')}) REFERENCES ${quoteQualified(f.references)} (${f.referencedColumns.map(q).join(', ')})${onDelete}`;
  const action = options.citus && citusRefusedAction(f) ? '' : onDelete;
  return `FOREIGN KEY (${[options.key, ...f.columns].map(q).join(', ')}) REFERENCES ${quoteQualified(parent.target)} (${[options.key, ...f.referencedColumns].map(q).join(', ')})${action}`;
}

/** Citus refuses ON DELETE SET NULL / SET DEFAULT on a foreign key that includes the distribution column. */
function citusRefusedAction(f: CatalogForeignKey): boolean {
  return f.onDelete === 'set null' || f.onDelete === 'set default';
}

/** The tables outside the sources that the shared tables reference: the shared lookup data (`public.countries`). */
function lookupTables(plans: TablePlan[]): string[] {
  const inside = new Set(plans.map((p) => p.ref.catalog.name));
  return [...new Set(plans.flatMap((p) => p.ref.catalog.foreignKeys.map((f) => f.references)).filter((r) => !inside.has(r)))].sort();
}

/**
 * `--citus`: the shared tables, still empty, placed on the cluster. The foreign keys come
 * last: Citus distributes no table that references a plain table or is referenced by one.
 */
function citusPlacement(plans: TablePlan[], options: ConsolidateOptions): string[] {
  const tenants = quoteQualified(`${options.into}.${options.tenants}`);
  const lookups = lookupTables(plans);
  const lines = [
    '-- --citus: the shared tables placed on the cluster while they are empty (no row moves).',
    '-- One connection per node: a foreign key to a reference table cannot follow a parallel change to a distributed table in a transaction.',
    'SET LOCAL citus.multi_shard_modify_mode TO sequential;',
    `-- Reference tables (a copy on every node)${lookups.length > 0 ? `: the lookup data the shared tables reference (${lookups.join(', ')})` : ': none'}.`,
    ...(lookups.length > 0
      ? [
          '-- A distributed table may reference a reference table (not a plain one): its foreign keys and joins to them stay on',
          "-- the shard's node. The sources reference them too: Citus adds the sources' tables to its metadata as local tables",
          '-- (their rows stay where they are); the rollback gives every one of them back as a plain table.',
          '-- create_reference_table copies each to every node and holds writes to it meanwhile (reads go on): lookup data is small.',
        ]
      : []),
    ...lookups.map((t) => `SELECT create_reference_table(${quoteLiteral(quoteQualified(t))});`),
    `-- ${options.tenants} distributed by its own id, the value every shared table's ${options.key} holds, and every shared table`,
    `-- by ${options.key}, colocated with it: a tenant's rows of every table share one node, so a query with ${options.key} = X`,
    '-- runs there, and joins and foreign keys on the key stay there. (A reference tenants table would keep the tenant row',
    '-- on every node, and `tenancy check` asks for it distributed by its id.)',
    `SELECT create_distributed_table(${quoteLiteral(tenants)}, 'id');`,
    ...plans.map(
      (p) =>
        `SELECT create_distributed_table(${quoteLiteral(quoteQualified(p.target))}, ${quoteLiteral(options.key)}, colocate_with => ${quoteLiteral(tenants)});`,
    ),
  ];
  const refused = plans.flatMap((p) =>
    p.ref.catalog.foreignKeys
      .filter((f) => plans.some((o) => o.ref.catalog.name === f.references) && citusRefusedAction(f))
      .map((f) => `${p.name}.${f.name} (ON DELETE ${f.onDelete.toUpperCase()})`),
  );
  lines.push(
    '-- The foreign keys, now that every table is placed (one constraint per ALTER TABLE: Citus refuses more on a distributed table).',
    ...(refused.length > 0
      ? [
          `-- Citus refuses ON DELETE SET NULL / SET DEFAULT on a key that includes ${options.key}: ${refused.join(', ')}`,
          '-- become NO ACTION here; the application clears such references itself before deleting the row they point to.',
        ]
      : []),
  );
  for (const p of plans) {
    lines.push(
      `ALTER TABLE ${quoteQualified(p.target)} ADD CONSTRAINT ${q(truncateBytes(`${p.name}_${options.key}_fkey`, 63))} FOREIGN KEY (${q(options.key)}) REFERENCES ${tenants} (id);`,
    );
    for (const f of p.ref.catalog.foreignKeys)
      lines.push(`ALTER TABLE ${quoteQualified(p.target)} ADD CONSTRAINT ${q(f.name)} ${foreignKey(f, plans, options)};`);
  }
  lines.push('');
  return lines;
}

/** `CREATE INDEX i ON s.t USING btree (a)` → `CREATE INDEX i ON into.t USING btree (key, a)`; other methods keep their columns. */
function indexWithKey(definition: string, p: TablePlan, options: ConsolidateOptions): string {
  const match = /^(CREATE (?:UNIQUE )?INDEX \S+ ON )(?:ONLY )?\S+ USING (\w+) \(/.exec(definition);
  if (!match) return definition;
  const rest = definition.slice(match[0].length);
  const columns = match[2] === 'btree' ? `${q(options.key)}, ` : '';
  return `${match[1]}${quoteQualified(p.target)} USING ${match[2]} (${columns}${withoutSchema(rest, p.ref.catalog.schema)}`;
}

/** A name cut to PostgreSQL's 63 bytes, never inside a character. */
function truncateBytes(name: string, bytes: number): string {
  let out = '';
  for (const ch of name) {
    if (Buffer.byteLength(out + ch) > bytes) break;
    out += ch;
  }
  return out;
}

function sequenceName(p: TablePlan): string {
  return quoteQualified(`${p.target.slice(0, p.target.indexOf('.'))}.${`${p.name}_${p.rangeColumn}_seq`.slice(0, 63)}`);
}

function mapTable(p: TablePlan, options: ConsolidateOptions): string {
  return quoteQualified(`${options.idsSchema}.${p.name}`);
}

function columnType(p: TablePlan, column: string): string {
  return p.ref.catalog.columns.find((c) => c.name === column)?.type ?? 'bigint';
}

// ---------------------------------------------------------------------------------------
// 2. one backfill per source
// ---------------------------------------------------------------------------------------

interface SourceSteps {
  /** The body: each statement with the comment line before it (if any); `copies`: it inserts the source's rows into a shared table; `sequence`: it sets a sequence past the ids copied. */
  body: { comment?: string; sql: string; copies?: boolean; sequence?: boolean }[];
  verifies: { name: string; sql: string }[];
}

function sourceSteps(plans: TablePlan[], source: ConsolidateSource, options: ConsolidateOptions): SourceSteps {
  const tenants = quoteQualified(`${options.into}.${options.tenants}`);
  const k = source.tenantId;
  const origin = source.database ? `database ${source.name}` : `schema ${source.schema}`;
  const body: SourceSteps['body'] = [
    {
      sql: `INSERT INTO ${tenants} (id, name, consolidated_from) VALUES (${k}, ${quoteLiteral(source.name)}, ${quoteLiteral(origin)})\n  ON CONFLICT (id) DO NOTHING;`,
    },
  ];
  const each = (comment: string, statements: string[], flags: { copies?: boolean; sequence?: boolean } = {}) =>
    statements.forEach((sql, i) => body.push(i === 0 ? { comment, sql, ...flags } : { sql, ...flags }));
  for (const p of plans) {
    const ranges = rangesOf(p, source);
    const rows = `${ranges.length} range${ranges.length === 1 ? '' : 's'}`;
    // The statistics of the shared tables know no row of this tenant yet: a join on its key would be
    // planned for one row and loop over all of them for each (quadratic). Once a big table's rows are in,
    // ANALYZE (in this transaction it sees them) lets the joins that read them be planned for what is there.
    // (--citus: a shared table's rows live in its shards, planned by the nodes; the coordinator's statistics do not plan them.)
    const big = !options.citus && (source.tableRows?.[p.name] ?? Infinity) >= analyzeFrom;
    if (p.remapped) {
      each(
        `${p.name}: new ids from ${sequenceName(p)}, kept in ${mapTable(p, options)} (${rows})`,
        ranges.map((r) => mapStatement(p, source, r, options)),
      );
      if (big) each(`${p.name}: statistics of its ids, which the copies below join`, [`ANALYZE ${mapTable(p, options)};`]);
    }
    const later = selfLater(p, source);
    each(
      `${p.name}${later.length > 0 ? ` (${later.join(', ')} in the second pass)` : ''} (${rows})`,
      ranges.map((r) => copyStatement(p, source, r, options)),
      { copies: true },
    );
    if (big && (p.remapped || p.remappedRefs.size > 0 || later.length > 0))
      each(`${p.name}: statistics of its rows, which the ${later.length > 0 ? 'second pass and the ' : ''}verify join`, [
        `ANALYZE ${quoteQualified(p.target)};`,
      ]);
    if (later.length > 0)
      each(
        `${p.name}: ${later.join(', ')}, now that every row of the table is there`,
        ranges.map((r) => selfStatement(p, source, r, options)),
      );
  }
  if (options.ids === 'keep') {
    const sequenced = plans.filter((p) => hasSequence(p));
    each(
      'The sequences past every id copied so far: a row the application inserts next does not collide.',
      sequenced.map((p) => {
        const seq = sequenceName(p);
        return `SELECT setval('${seq.replace(/'/g, "''")}', greatest((SELECT max(${q(p.rangeColumn)}) FROM ${quoteQualified(p.target)}), (SELECT last_value FROM ${seq})));`;
      }),
      { sequence: true },
    );
  }
  return { body, verifies: plans.map((p) => verifyTable(p, source, options)) };
}

/** What `apply --json` reports of a source: read back from its unit's file (consolidateSourceMarker). */
export interface ConsolidateSourceMarker {
  source: string;
  tenantId: number;
  /** The key column of the shared tables. */
  key: string;
  /** The shared tables in copy order, as [schema, table]. */
  tables: [string, string][];
  /** The source's tables on disk when the plan was written. */
  bytes: number;
  /** A source database's staging schema in the target (its COPY's rows and bytes are recorded there). */
  stage?: string;
}

const markerPrefix = 'consolidated source, for apply --json:';

/** One comment line of a source's unit that `apply --json` reads back for its per-source record. */
function sourceMarker(plans: TablePlan[], source: ConsolidateSource, options: ConsolidateOptions, comment: '--' | '//'): string {
  const marker: ConsolidateSourceMarker = {
    source: source.name,
    tenantId: source.tenantId,
    key: options.key,
    tables: plans.map((p) => [options.into, p.name]),
    bytes: source.bytes ?? 0,
    ...(source.database ? { stage: source.schema } : {}),
  };
  return `${comment} ${markerPrefix} ${JSON.stringify(marker)}`;
}

/** The marker of a unit's text, if it is a consolidated source's unit. */
export function readSourceMarker(text: string): ConsolidateSourceMarker | undefined {
  for (const line of text.split('\n')) {
    const body = line.replace(/^(?:--|\/\/) /, '');
    if (body !== line && body.startsWith(markerPrefix)) return JSON.parse(body.slice(markerPrefix.length)) as ConsolidateSourceMarker;
  }
  return undefined;
}

function unitName(source: ConsolidateSource): string {
  return `consolidate_${source.name.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
}

function sourceRollback(plans: TablePlan[], source: ConsolidateSource, options: ConsolidateOptions): string {
  const tenants = quoteQualified(`${options.into}.${options.tenants}`);
  const k = source.tenantId;
  return [
    `-- Removes tenant ${k} (${source.database ? `database ${source.name}` : `schema ${source.schema}`}) from the shared tables, children first: exactly the rows the copy added.`,
    '-- tenantify:snapshot none',
    '',
    ...[...plans].reverse().map((p) => `DELETE FROM ${quoteQualified(p.target)} WHERE ${q(options.key)} = ${k};`),
    ...(options.ids === 'remap'
      ? plans
          .filter((p) => p.remapped)
          .reverse()
          .map((p) => `DELETE FROM ${mapTable(p, options)} WHERE ${q(options.key)} = ${k};`)
      : []),
    `DELETE FROM ${tenants} WHERE id = ${k};`,
    ...(source.database ? [`DROP SCHEMA IF EXISTS ${q(source.schema)} CASCADE;`] : []),
    '',
    `-- tenantify:verify no row of tenant ${k} is left`,
    `SELECT ${plans.map((p) => `(SELECT count(*) FROM ${quoteQualified(p.target)} WHERE ${q(options.key)} = ${k})`).join(' + ')} AS rows_left WHERE ${plans.map((p) => `EXISTS (SELECT FROM ${quoteQualified(p.target)} WHERE ${q(options.key)} = ${k})`).join(' OR ')};`,
    '',
  ].join('\n');
}

function freezeLock(plans: TablePlan[], source: ConsolidateSource): string {
  return `LOCK TABLE ${plans.map((p) => quoteQualified(`${source.schema}.${p.name}`)).join(', ')} IN EXCLUSIVE MODE;`;
}

function sourceUnit(plans: TablePlan[], source: ConsolidateSource, options: ConsolidateOptions): ConsolidateUnit {
  const k = source.tenantId;
  const steps = sourceSteps(plans, source, options);
  const name = unitName(source);
  const rollback = sourceRollback(plans, source, options);
  const summary = `tenant ${k}: ${source.database ? `database ${source.name}` : source.schema}, ${plans.length} tables`;
  if (source.database)
    return {
      name,
      kind: 'backfill',
      format: 'ts',
      summary,
      sql: typescriptUnit(plans, source, steps, options),
      rollback,
      source: source.name,
    };

  const lines: string[] = [
    `-- Copies schema ${source.schema} into the shared tables as tenant ${k} (${options.tenants}.id = ${k}).`,
    '-- Safe on a live database: the source is only read; the shared tables get rows of a tenant no one',
    '-- reads yet. One transaction, REPEATABLE READ: every statement reads the source as of one snapshot,',
    '-- so a row the application writes during the copy is seen by no table (never by a child and not by',
    '-- its parent), and the verify sections, in the same transaction, compare that snapshot with the copy.',
    '-- A killed run leaves nothing of this tenant (the server rolls its transaction back), and apply again',
    '-- copies the source whole: no row twice. Tables run parents first; a reference to a row of the same',
    '-- table comes with the rows when the table is one statement (its foreign key is checked at the end of',
    '-- the statement), else in a second pass, once every row of that table is there.',
    sourceMarker(plans, source, options, '--'),
    '-- tenantify:snapshot none',
    '',
    'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;',
    '-- A killed run: its session ends within a second, even inside a long statement, and its snapshot and locks with it.',
    "SET LOCAL client_connection_check_interval = '1s';",
    '',
  ];
  if (options.freeze)
    lines.push(
      `-- --freeze: the application's writes to ${source.schema} wait (or fail on their own lock_timeout) until this`,
      '-- transaction ends; its reads go on. EXCLUSIVE waits for the writes in flight, so the snapshot taken next',
      '-- holds every committed write and no other comes until the copy is verified and committed. A lock, not a',
      '-- state: a killed run gives the writes back at once (the server ends the session), nothing to undo.',
      freezeLock(plans, source),
      '',
    );
  for (const step of steps.body) lines.push(...(step.comment ? [`-- ${step.comment}`] : []), step.sql, '');
  for (const v of steps.verifies) lines.push(`-- tenantify:verify ${v.name}`, v.sql, '');
  return { name, kind: 'backfill', format: 'sql', summary, sql: lines.join('\n'), rollback, source: source.name };
}

/**
 * `--parallel N`: the copy of every source, N at a time (copySources: each source one
 * REPEATABLE READ transaction on a session of its own, its verify queries in its snapshot
 * before the commit, a source already committed skipped on resume). TypeScript, because
 * it runs sessions side by side; the statements are the ones a source's own unit runs
 * without --parallel.
 */
function parallelCopyUnit(plans: TablePlan[], sources: ConsolidateSource[], options: ConsolidateOptions): ConsolidateUnit {
  const literal = (text: string) => `\`${text.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${')}\``;
  const tenants = quoteQualified(`${options.into}.${options.tenants}`);
  let sequences: string[] = [];
  const lines = [
    `// Copies ${sources.length} schemas into the shared tables, ${options.parallel} at a time (--parallel ${options.parallel}).`,
    '// Each source is one REPEATABLE READ transaction on a session of its own: its statements read one snapshot,',
    '// its verify queries compare that snapshot with the copy before the commit, and a killed run leaves nothing',
    '// of the sources in flight (apply again copies them whole, and skips the sources committed: no row twice).',
    ...(options.freeze
      ? ["// --freeze: each source's tables are locked IN EXCLUSIVE MODE first (the application's writes to it wait, reads go on)."]
      : []),
    "// Each source's own unit after this one verifies its tenant again and is its rollback.",
    "import { copySources, defineUnit } from 'tenantify';",
    '',
    'const sources = [',
  ];
  for (const source of sources) {
    const steps = sourceSteps(plans, source, options);
    sequences = steps.body.filter((b) => b.sequence).map((b) => b.sql);
    lines.push(
      '  {',
      `    name: ${JSON.stringify(source.name)},`,
      `    tenantId: ${source.tenantId},`,
      `    rows: ${source.rows ?? 0},`,
      `    bytes: ${source.bytes ?? 0},`,
      ...(options.freeze ? [`    lock: ${literal(freezeLock(plans, source))},`] : []),
      '    statements: [',
      ...steps.body
        .filter((b) => !b.sequence)
        .flatMap((b) => [
          ...(b.comment ? [`      // ${b.comment}`] : []),
          `      { sql: ${literal(b.sql)}${b.copies ? ', copies: true' : ''} },`,
        ]),
      '    ],',
      '    verifies: [',
      ...steps.verifies.map((v) => `      { name: ${JSON.stringify(v.name)}, sql: ${literal(v.sql.replace(/;\s*$/, ''))} },`),
      '    ],',
      '  },',
    );
  }
  lines.push(
    '];',
    '',
    ...(sequences.length > 0
      ? [
          '// Once every source is in: the sequences past every id copied (once, not per source: sources copied side by side',
          '// would each set them from what they see).',
        ]
      : []),
    ...(sequences.length > 0
      ? ['const after = [', ...sequences.map((sql) => `  ${literal(sql)},`), '];']
      : ['const after: string[] = [];']),
    '',
    'export default defineUnit({',
    '  transaction: false,',
    "  snapshot: 'none',",
    '  async up(db, ctx) {',
    `    const copied = await copySources(ctx, { parallel: ${options.parallel}, tenants: ${JSON.stringify(tenants)}, sources, after });`,
    '    const rows = copied.reduce((n, c) => n + c.rows, 0);',
    '    return `${copied.length} sources, ${rows} rows: ${JSON.stringify(copied)}`;',
    '  },',
    '});',
    '',
  );
  const rollback = [
    `-- Removes what the parallel copy added and no source's own unit has removed yet (each source's unit, newer,`,
    '-- is rolled back first and removes its tenant): the rows of every tenant of the consolidation, children first.',
    '-- tenantify:snapshot none',
    '',
    ...sources.map((s) =>
      sourceRollback(plans, s, options)
        .split('\n')
        .filter((l) => l.startsWith('DELETE '))
        .join('\n'),
    ),
    '',
  ].join('\n');
  return {
    name: 'consolidate_copy',
    kind: 'backfill',
    format: 'ts',
    summary: `the copy of ${sources.length} sources, ${options.parallel} at a time`,
    sql: lines.join('\n'),
    rollback,
  };
}

/** `--parallel`: a source's own unit once the parallel copy ran: it checks the tenant is there, verifies it, and is its rollback. */
function copiedSourceUnit(plans: TablePlan[], source: ConsolidateSource, options: ConsolidateOptions): ConsolidateUnit {
  const tenants = quoteQualified(`${options.into}.${options.tenants}`);
  const k = source.tenantId;
  const steps = sourceSteps(plans, source, options);
  const lines = [
    `-- Tenant ${k} (${options.tenants}.id = ${k}): schema ${source.schema}, copied by consolidate_copy (--parallel), which verified it`,
    "-- in its copy's snapshot. This unit verifies it again (the source as it is now: a source written since its copy",
    '-- differs) and is its rollback, so a bare rollback removes this tenant exactly.',
    sourceMarker(plans, source, options, '--'),
    '-- tenantify:snapshot none',
    '',
    `DO $$ BEGIN IF NOT EXISTS (SELECT FROM ${tenants} WHERE id = ${k}) THEN RAISE EXCEPTION 'tenant ${k} (${source.schema.replace(/'/g, "''")}) was not copied'; END IF; END $$;`,
    '',
  ];
  for (const v of steps.verifies) lines.push(`-- tenantify:verify ${v.name}`, v.sql, '');
  return {
    name: unitName(source),
    kind: 'backfill',
    format: 'sql',
    summary: `tenant ${k}: ${source.schema}, verified (copied by consolidate_copy)`,
    sql: lines.join('\n'),
    rollback: sourceRollback(plans, source, options),
    source: source.name,
  };
}

/**
 * A source database's unit: TypeScript, because it reaches another database. It streams the
 * source's tables into a staging schema of the target (stageSource: COPY at both ends, one
 * snapshot), then runs the same statements a schema source runs, reading the staging schema.
 */
function typescriptUnit(plans: TablePlan[], source: ConsolidateSource, steps: SourceSteps, options: ConsolidateOptions): string {
  const database = source.database as NonNullable<ConsolidateSource['database']>;
  const literal = (text: string) => `\`${text.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${')}\``;
  const tables = plans.map((p) => ({
    table: p.name,
    columns: p.ref.catalog.columns.map((c) => ({ name: c.name, type: c.type })),
    primaryKey: p.ref.catalog.primaryKey ?? [],
  }));
  const lines = [
    `// Copies database ${source.name} into the shared tables as tenant ${source.tenantId} (${options.tenants}.id = ${source.tenantId}).`,
    `// Its URL is read from ${database.sourcesPath} when the unit runs (never written here).`,
    '// 1. stageSource streams its tables (schema ' + database.schema + ') into the staging schema ' + source.schema + ' of the target:',
    '//    COPY at both ends, binary, in one snapshot of the source, memory bounded by back-pressure; all or nothing.',
    ...(options.freeze
      ? ["//    --freeze: the source's tables are locked against writes (EXCLUSIVE: reads go on) for the time of that snapshot."]
      : []),
    '// 2. the statements below copy the staging schema into the shared tables, each committed on its own and',
    '//    written so that running it again adds nothing: a killed run resumes and copies no row twice.',
    '// The staging schema stays for the verifies (`tenantify verify`); the rollback drops it.',
    sourceMarker(plans, source, options, '//'),
    "import { defineUnit, sql, stageSource } from 'tenantify';",
    '',
    `const tables = ${JSON.stringify(tables, null, 2)};`,
    '',
    'const statements = [',
    ...steps.body.flatMap((step) => [...(step.comment ? [`  // ${step.comment}`] : []), `  ${literal(step.sql)},`]),
    '];',
    '',
    'export default defineUnit({',
    '  transaction: false,',
    "  snapshot: 'none',",
    '  async up(db, ctx) {',
    `    const staged = await stageSource(ctx, { sources: new URL(${JSON.stringify(database.sourcesPath)}, import.meta.url), source: ${JSON.stringify(source.name)}, schema: ${JSON.stringify(database.schema)}, stage: ${JSON.stringify(source.schema)}, tables${options.freeze ? ', freeze: true' : ''} });`,
    '    if (staged.rows > 0) ctx.log(`staged ${staged.rows} rows, ${staged.bytes} bytes`);',
    '    for (const statement of statements) await sql.raw(statement).execute(db);',
    '  },',
    '  verify: [',
    ...steps.verifies.map((v) => `    { name: ${JSON.stringify(v.name)}, sql: ${literal(v.sql.replace(/;\s*$/, ''))} },`),
    '  ],',
    '});',
    '',
  ];
  return lines.join('\n');
}

function hasSequence(p: TablePlan): boolean {
  const column = p.ref.catalog.columns.find((c) => c.name === p.rangeColumn);
  return (
    (p.ref.catalog.primaryKey?.length ?? 0) === 1 &&
    column !== undefined &&
    (column.identity !== undefined || /^nextval\(/.test(p.ref.defaults[column.name] ?? ''))
  );
}

/** The WHERE conditions of a table's key ranges: `<= b1`, `> b1 AND <= b2`, ..., `> bn`. */
function rangesOf(p: TablePlan, source: ConsolidateSource): string[] {
  const bounds = source.bounds[p.name] ?? [];
  const column = `s.${q(p.rangeColumn)}`;
  const literal = (value: string) => (p.rangeNumeric ? value : quoteLiteral(value));
  if (bounds.length === 0) return ['true'];
  const ranges = [`${column} <= ${literal(bounds[0] as string)}`];
  for (let i = 1; i < bounds.length; i++)
    ranges.push(`${column} > ${literal(bounds[i - 1] as string)} AND ${column} <= ${literal(bounds[i] as string)}`);
  ranges.push(`${column} > ${literal(bounds[bounds.length - 1] as string)}`);
  return ranges;
}

/**
 * A source database's unit commits statement by statement: a run killed between two finds some
 * of them done, so each insert skips the rows that are there (`ON CONFLICT ... DO NOTHING`). A
 * schema source's copy is one transaction (its unit, or its transaction in copySources): it
 * commits whole or leaves nothing, and runs again only where the tenant has no row, so its
 * inserts are plain. A row there all the same is an error (the unit fails and is rolled back),
 * not one skipped; and a plain insert costs less than one that checks every unique index first
 * (speculative insertion: about 40% of a mapping table's insert).
 */
function onConflict(source: ConsolidateSource, target: string): string[] {
  return source.database ? [`ON CONFLICT ${target}DO NOTHING`] : [];
}

function mapStatement(p: TablePlan, source: ConsolidateSource, range: string, options: ConsolidateOptions): string {
  const id = q(p.rangeColumn);
  return `${[
    `INSERT INTO ${mapTable(p, options)} (${q(options.key)}, old_id, new_id)`,
    `SELECT ${source.tenantId}, s.${id}, nextval('${sequenceName(p).replace(/'/g, "''")}') FROM ${quoteQualified(`${source.schema}.${p.name}`)} s`,
    `${range === 'true' ? '' : ` WHERE ${range}`} ORDER BY s.${id}`,
    ...onConflict(source, ''),
  ].join('\n')};`;
}

/** Joins of the map tables a copy reads: `m` for the table's own ids, `r_<column>` for each remapped reference. */
function mapJoins(
  p: TablePlan,
  source: ConsolidateSource,
  options: ConsolidateOptions,
  direction: 'old' | 'new',
  alias: string,
  columns: string[],
): string[] {
  const k = source.tenantId;
  const key = q(options.key);
  const from = direction === 'old' ? 'old_id' : 'new_id';
  const joins: string[] = [];
  if (p.remapped) joins.push(`  JOIN ${mapTable(p, options)} m ON m.${key} = ${k} AND m.${from} = ${alias}.${q(p.rangeColumn)}`);
  for (const [column, table] of p.remappedRefs) {
    if (!columns.includes(column)) continue;
    const parent = table.slice(table.indexOf('.') + 1);
    joins.push(
      `  LEFT JOIN ${quoteQualified(`${options.idsSchema}.${parent}`)} ${q(`r_${column}`)} ON ${q(`r_${column}`)}.${key} = ${k} AND ${q(`r_${column}`)}.${from} = ${alias}.${q(column)}`,
    );
  }
  return joins;
}

/** What the target gets for a source column: its new id under remap, else the value itself. */
function copiedValue(p: TablePlan, column: string): string {
  if (p.remapped && column === p.rangeColumn) return 'm.new_id';
  if (p.remappedRefs.has(column)) return `${q(`r_${column}`)}.new_id`;
  return `s.${q(column)}`;
}

/**
 * The references to rows of the same table wait for a second pass when the table is copied in
 * several ranges: a row may reference one of a later range. Copied in one statement, the table
 * takes them at once: PostgreSQL checks a foreign key at the end of the statement, when every
 * row it inserted is there (a row referencing a later one included).
 */
function selfLater(p: TablePlan, source: ConsolidateSource): string[] {
  return rangesOf(p, source).length > 1 ? p.selfColumns : [];
}

function copyStatement(p: TablePlan, source: ConsolidateSource, range: string, options: ConsolidateOptions): string {
  const columns = p.ref.catalog.columns.map((c) => c.name);
  const later = selfLater(p, source);
  const values = columns.map((c) => (later.includes(c) ? 'NULL' : copiedValue(p, c)));
  const conflict = [options.key, ...(p.ref.catalog.primaryKey as string[])].map(q).join(', ');
  return `${[
    `INSERT INTO ${quoteQualified(p.target)} (${[options.key, ...columns].map(q).join(', ')})`,
    `SELECT ${source.tenantId}, ${values.join(', ')}`,
    `  FROM ${quoteQualified(`${source.schema}.${p.name}`)} s`,
    ...mapJoins(
      p,
      source,
      options,
      'old',
      's',
      columns.filter((c) => !later.includes(c)),
    ),
    ...(range === 'true' ? [] : [` WHERE ${range}`]),
    ...onConflict(source, `(${conflict}) `),
  ].join('\n')};`;
}

function selfStatement(p: TablePlan, source: ConsolidateSource, range: string, options: ConsolidateOptions): string {
  const key = q(options.key);
  const pk = p.ref.catalog.primaryKey as string[];
  const sets = p.selfColumns.map((c) => `${q(c)} = ${copiedValue(p, c)}`);
  const matches = pk.map((c) => `t.${q(c)} = ${copiedValue(p, c)}`);
  const changed = p.selfColumns.map((c) => `t.${q(c)} IS DISTINCT FROM ${copiedValue(p, c)}`).join(' OR ');
  return [
    `UPDATE ${quoteQualified(p.target)} t SET ${sets.join(', ')}`,
    `  FROM ${quoteQualified(`${source.schema}.${p.name}`)} s`,
    ...mapJoins(p, source, options, 'old', 's', p.selfColumns),
    ` WHERE t.${key} = ${source.tenantId} AND ${matches.join(' AND ')}${range === 'true' ? '' : ` AND ${range}`}`,
    `   AND (${changed});`,
  ].join('\n');
}

/**
 * Count and an order-independent hash of the source's table and of the tenant's rows (ids
 * mapped back): the sum of each row's 64-bit hash, one pass over each side. The hash is
 * PostgreSQL's `hashtextextended` of the row's text (the one hash partitioning relies on, so
 * stable across servers and versions): as wide as the 64 bits of md5 it replaced, at a fifth
 * of the cost (no hex text, no casts through bit(64)); the verify hashes every row of the
 * tenant twice, the source's and the copy.
 */
function verifyTable(p: TablePlan, source: ConsolidateSource, options: ConsolidateOptions): { name: string; sql: string } {
  const columns = p.ref.catalog.columns.map((c) => c.name);
  const hash = (values: string[]) => `coalesce(sum(hashtextextended(ROW(${values.join(', ')})::text, 0)::numeric), 0)`;
  const back = (c: string): string => {
    if (p.remapped && c === p.rangeColumn) return 'm.old_id';
    if (p.remappedRefs.has(c)) return `${q(`r_${c}`)}.old_id`;
    return `t.${q(c)}`;
  };
  const name = `${source.database ? source.name : source.schema}.${p.name} arrived whole: row count and content hash equal`;
  const sql = [
    `WITH source AS (SELECT count(*) AS n, ${hash(columns.map((c) => `s.${q(c)}`))} AS hash FROM ${quoteQualified(`${source.schema}.${p.name}`)} s),`,
    `     target AS (SELECT count(*) AS n, ${hash(columns.map(back))} AS hash`,
    `                  FROM ${quoteQualified(p.target)} t`,
    ...mapJoins(p, source, options, 'new', 't', columns).map((j) => `              ${j}`),
    `                 WHERE t.${q(options.key)} = ${source.tenantId})`,
    `SELECT ${quoteLiteral(p.name)} AS "table", source.n AS source_rows, target.n AS target_rows FROM source, target`,
    ` WHERE (source.n, source.hash) IS DISTINCT FROM (target.n, target.hash);`,
  ].join('\n');
  return { name, sql };
}
