/**
 * tenancyConsolidate(): the plan that brings one schema per customer into one shared,
 * keyed schema. Reads the target database (read only, one repeatable-read transaction):
 * the sources, their catalog, their columns' defaults and the key ranges of their tables;
 * runs the preflight (every source's shape against the reference: drift is exit 2 and
 * nothing is written); lets the pure core write the units; writes them numbered after the
 * plan's last unit, never over a file, and the model into the config.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import type pg from 'pg';
import { withSession } from '../db/connection.js';
import { redact } from '../db/redact.js';
import { parseSources, type SourceLine } from '../db/stage-source.js';
import { UsageError } from '../errors.js';
import { loadConfig } from '../plan/config.js';
import { readCatalog } from '../tenancy/catalog.js';
import { consolidatePlan, type ConsolidateSource, type IdsMode } from '../tenancy/consolidate/plan.js';
import { compareShapes, describeDrifts, type Drift, type SourceShape, type SourceTable } from '../tenancy/consolidate/shape.js';
import { singular } from '../tenancy/graph.js';
import type { TenancyConfig } from '../tenancy/types.js';
import { writeTenancyModel } from './tenancy-analyze.js';
import { lastPrefix } from './tenancy-scaffold.js';

/** The schema a database source is staged in while its unit runs (the tool's, like the ledger: `tenancy check` reads past it). */
export const stagingSchemaPrefix = 'consolidate_stage_';

export interface TenancyConsolidateOptions {
  dir: string;
  url: string | undefined;
  /** `--from-schemas`: a LIKE pattern over the schema names of the target database. */
  fromSchemas?: string | undefined;
  /** `--from-databases`: a file of `name URL` lines, one source database each. */
  fromDatabases?: string | undefined;
  /** The schema of each source database that holds its tables (default public). */
  sourceSchema?: string | undefined;
  exclude?: string[] | undefined;
  /** The source every other is compared with (default: the first by name). */
  reference?: string | undefined;
  into?: string | undefined;
  tenants?: string | undefined;
  key?: string | undefined;
  ids: IdsMode;
  /** Rows per copy statement. */
  batchSize?: number | undefined;
  /** `--freeze`: the application's writes to a source wait while it is copied. */
  freeze?: boolean | undefined;
  /** `--parallel N`: sources copied at once (schema sources). */
  parallel?: number | undefined;
  /** `--citus`: the shared tables distributed by the key (schema sources, `--ids keep`). */
  citus?: boolean | undefined;
}

export interface ConsolidatedSource {
  source: string;
  tenantId: number;
  unit: string;
  tables: number;
  rows: number;
  statements: number;
}

export interface TenancyConsolidateResult {
  files: { unit: string; kind: 'migration' | 'backfill'; file: string; rollback: string; summary: string }[];
  sources: ConsolidatedSource[];
  reference: string;
  config: string;
  model: TenancyConfig;
}

export const idsSchema = 'consolidated_ids';
const defaultBatchSize = 10_000;

export async function tenancyConsolidate(options: TenancyConsolidateOptions): Promise<TenancyConsolidateResult> {
  const config = await loadConfig(options.dir);
  const into = options.into ?? 'public';
  const tenants = options.tenants ?? 'organizations';
  const key = options.key ?? `${singular(tenants.slice(tenants.lastIndexOf('.') + 1))}_id`;
  const batchSize = options.batchSize ?? defaultBatchSize;
  const last = await lastPrefix(options.dir);

  if (options.parallel !== undefined && options.fromDatabases)
    throw new UsageError('--parallel copies schema sources side by side; source databases are copied one at a time', {
      code: 'consolidate-parallel-databases',
      hint: 'leave --parallel out with --from-databases',
    });
  if (options.citus) {
    const other = options.fromDatabases
      ? '--from-databases'
      : options.ids === 'remap'
        ? '--ids remap'
        : options.parallel !== undefined
          ? '--parallel'
          : undefined;
    if (other)
      throw new UsageError(
        `--citus with ${other} is not supported: --citus places the shared tables for schema sources copied one by one under --ids keep`,
        {
          code: 'consolidate-citus-unsupported',
          hint: `leave ${other} out (--from-schemas, --ids keep), or consolidate without --citus; nothing was written`,
        },
      );
  }
  const readOptions = { ...options, into, tenants, batchSize, ledgerSchema: config.ledgerSchema };
  const read = options.fromDatabases
    ? await readDatabases(options.fromDatabases, readOptions)
    : await withReadOnly(options.url, (client) => readSources(client, readOptions));

  const units = consolidatePlan(read.reference, read.sources, {
    into,
    tenants,
    key,
    ids: options.ids,
    idsSchema,
    freeze: options.freeze,
    parallel: options.parallel,
    citus: options.citus,
  });
  const width = Math.max(4, String(last.value + BigInt(units.length)).length, last.width);
  const files = units.map((u, i) => {
    const id = `${String(last.value + BigInt(i + 1)).padStart(width, '0')}_${u.name}`;
    return {
      unit: id,
      kind: u.kind,
      file: `${u.kind === 'migration' ? 'migrations' : 'backfills'}/${id}.${u.format}`,
      rollback: `rollbacks/${id}.sql`,
      summary: u.summary,
    };
  });
  const taken = files.flatMap((f) => [f.file, f.rollback]).filter((path) => existsSync(join(options.dir, path)));
  if (taken.length > 0) {
    throw new UsageError(`${join(options.dir, taken[0] as string)} exists: tenancy consolidate never overwrites a file`, {
      code: 'file-exists',
      hint: 'move or remove it (or write into another --dir); nothing was written',
      details: taken.slice(1),
    });
  }
  for (const sub of ['migrations', 'backfills', 'rollbacks']) await mkdir(join(options.dir, sub), { recursive: true });
  for (const [i, u] of units.entries()) {
    const f = files[i] as (typeof files)[number];
    await writeFile(join(options.dir, f.file), u.sql, { flag: 'wx' });
    await writeFile(join(options.dir, f.rollback), u.rollback, { flag: 'wx' });
  }
  const qualified = into === 'public' ? tenants : `${into}.${tenants}`;
  const model: TenancyConfig = {
    ...(config.tenancy ?? {}),
    owner: qualified,
    tenants: qualified,
    key,
    setting: config.tenancy?.setting ?? 'app.tenant_id',
    rls: config.tenancy?.rls ?? false,
  };
  const configPath = await writeTenancyModel(options.dir, model);
  const sources = read.sources.map((s): ConsolidatedSource => ({
    source: s.name,
    tenantId: s.tenantId,
    unit: files[units.findIndex((u) => u.source === s.name)]?.unit ?? '',
    tables: read.reference.tables.length,
    rows: read.rows.get(s.name) ?? 0,
    statements: Object.values(s.bounds).reduce((n, b) => n + b.length + 1, 0),
  }));
  return { files, sources, reference: read.reference.source, config: configPath, model };
}

interface ReadOptions extends TenancyConsolidateOptions {
  into: string;
  tenants: string;
  batchSize: number;
  ledgerSchema: string;
}

async function readSources(client: pg.ClientBase, options: ReadOptions): Promise<Read> {
  const pattern = options.fromSchemas as string;
  const { rows: found } = await client.query<{ name: string }>(
    'SELECT nspname AS name FROM pg_namespace WHERE nspname LIKE $1 ORDER BY nspname COLLATE "C"',
    [pattern],
  );
  const excluded = new Set(options.exclude ?? []);
  const unknown = [...excluded].filter((e) => !found.some((f) => f.name === e));
  if (unknown.length > 0)
    throw new UsageError(`--exclude ${unknown.join(', ')}: no such source matches ${pattern}`, {
      code: 'consolidate-unknown-source',
      hint: `sources matching it: ${found.map((f) => f.name).join(', ') || 'none'}`,
    });
  const names = found
    .map((f) => f.name)
    .filter((n) => !excluded.has(n) && n !== options.into && n !== options.ledgerSchema && n !== idsSchema);
  if (names.length === 0)
    throw new UsageError(`no schema matches ${pattern}${excluded.size > 0 ? ' (after --exclude)' : ''}`, {
      code: 'consolidate-no-sources',
      hint: "--from-schemas takes a LIKE pattern, e.g. 'customer_%'",
    });
  const referenceName = options.reference ?? (names[0] as string);
  if (!names.includes(referenceName))
    throw new UsageError(`--reference ${referenceName} is not one of the sources`, {
      code: 'consolidate-unknown-source',
      hint: `sources: ${names.join(', ')}`,
    });

  const shapes = await readShapes(client, names, (schema) => schema);
  const reference = shapes.find((s) => s.source === referenceName) as SourceShape;
  if (reference.tables.length === 0)
    throw new UsageError(`the reference ${referenceName} has no tables`, { code: 'consolidate-no-tables' });
  const drifts = compareShapes(reference, shapes);
  if (drifts.length > 0) throw driftError(drifts, referenceName);
  await ensureTargetFree(client, options, reference);

  const sources: ConsolidateSource[] = [];
  const rows = new Map<string, number>();
  for (const [i, shape] of shapes.entries()) {
    const { bounds, total, tableRows } = await keyRanges(client, shape, options.batchSize);
    rows.set(shape.source, total);
    sources.push({
      name: shape.source,
      schema: shape.schema,
      tenantId: i + 1,
      bounds,
      rows: total,
      tableRows,
      bytes: await tablesSize(client, shape.schema),
    });
  }
  return { reference, sources, rows };
}

/** The size on disk of a schema's tables (the progress's and apply --json's bytes). */
async function tablesSize(client: pg.ClientBase, schema: string): Promise<number> {
  const { rows } = await client.query<{ bytes: string | null }>(
    `SELECT sum(pg_table_size(c.oid))::text AS bytes FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'`,
    [schema],
  );
  return Number(rows[0]?.bytes ?? 0);
}

type Read = { reference: SourceShape; sources: ConsolidateSource[]; rows: Map<string, number> };

async function withReadOnly<T>(url: string | undefined, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  return withSession(url, 'tenancy consolidate (read only)', async (s) => {
    await s.client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      return await fn(s.client);
    } finally {
      await s.client.query('ROLLBACK');
    }
  });
}

/** Each schema's tables and their columns' defaults, from one catalog read. */
async function readShapes(client: pg.ClientBase, schemas: string[], sourceOf: (schema: string) => string): Promise<SourceShape[]> {
  const catalog = await readCatalog(client, { schemas });
  const { rows: defaults } = await client.query<{ schema: string; table: string; column: string; expr: string }>(
    `SELECT n.nspname AS schema, c.relname AS table, a.attname AS column, pg_get_expr(d.adbin, d.adrelid) AS expr
       FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
       JOIN pg_class c ON c.oid = d.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ANY($1) AND NOT a.attisdropped`,
    [schemas],
  );
  return schemas.map((schema): SourceShape => ({
    source: sourceOf(schema),
    schema,
    tables: catalog.tables
      .filter((t) => t.schema === schema)
      .map((t): SourceTable => ({
        catalog: t,
        defaults: Object.fromEntries(defaults.filter((d) => d.schema === schema && d.table === t.table).map((d) => [d.column, d.expr])),
      })),
  }));
}

/** Per table the upper bounds of its key ranges (every batchSize-th key of its primary key's first column), and the source's rows. */
async function keyRanges(
  client: pg.ClientBase,
  shape: SourceShape,
  batchSize: number,
): Promise<{ bounds: Record<string, string[]>; total: number; tableRows: Record<string, number> }> {
  const bounds: Record<string, string[]> = {};
  const tableRows: Record<string, number> = {};
  let total = 0;
  for (const t of shape.tables) {
    const column = (t.catalog.primaryKey ?? [])[0];
    if (!column) continue;
    const table = `${quoteId(shape.schema)}.${quoteId(t.catalog.table)}`;
    const { rows } = await client.query<{ bound: string }>(
      `SELECT k::text AS bound FROM (
         SELECT k, row_number() OVER (ORDER BY k) AS rn, count(*) OVER () AS total FROM (SELECT ${quoteId(column)} AS k FROM ${table}) keys) numbered
        WHERE rn % $1 = 0 AND rn < total ORDER BY k`,
      [batchSize],
    );
    bounds[t.catalog.table] = [...new Set(rows.map((r) => r.bound))];
    const { rows: count } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
    tableRows[t.catalog.table] = count[0]?.n ?? 0;
    total += count[0]?.n ?? 0;
  }
  return { bounds, total, tableRows };
}

/**
 * `--from-databases`: each source database read (read only) for its shape, key ranges and
 * rows; the preflight as for schemas; each source then staged in the target under
 * `consolidate_stage_<name>` when its unit runs.
 */
async function readDatabases(file: string, options: ReadOptions): Promise<Read> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`the sources file ${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      code: 'consolidate-sources-unreadable',
    });
  }
  const excluded = new Set(options.exclude ?? []);
  const lines = parseSources(text).filter((l) => !excluded.has(l.name));
  if (lines.length === 0)
    throw new UsageError(`${file} names no source${excluded.size > 0 ? ' (after --exclude)' : ''}`, {
      code: 'consolidate-no-sources',
      hint: 'one source a line: `name postgres://user@host/db` (or a bare URL), # comments',
    });
  const bad = lines.find((l) => !/^[A-Za-z0-9_]+$/.test(l.name));
  if (bad)
    throw new UsageError(
      `${file}:${bad.line}: a source's name is letters, digits and _ (it names its tenant, unit and staging schema): ${bad.name}`,
      { code: 'consolidate-source-name' },
    );
  const seen = new Set<string>();
  for (const l of lines) {
    if (seen.has(l.name))
      throw new UsageError(`${file}:${l.line}: the source ${l.name} is named twice`, { code: 'consolidate-source-name' });
    seen.add(l.name);
  }
  const schema = options.sourceSchema ?? 'public';
  const shapes: SourceShape[] = [];
  const bounds = new Map<string, { bounds: Record<string, string[]>; total: number; tableRows: Record<string, number> }>();
  const sizes = new Map<string, number>();
  for (const line of lines) {
    await withReadOnly(line.url, async (client) => {
      const [shape] = await readShapes(client, [schema], () => line.name);
      shapes.push(shape as SourceShape);
      bounds.set(line.name, await keyRanges(client, shape as SourceShape, options.batchSize));
      sizes.set(line.name, await tablesSize(client, schema));
    }).catch((error: unknown) => {
      if (error instanceof UsageError) throw error;
      throw new UsageError(`${file}:${line.line}: the source ${line.name} cannot be read: ${redact((error as Error).message)}`, {
        code: 'consolidate-source-unreachable',
      });
    });
  }
  const referenceName = options.reference ?? (lines[0] as SourceLine).name;
  const reference = shapes.find((s) => s.source === referenceName);
  if (!reference)
    throw new UsageError(`--reference ${referenceName} is not one of the sources`, {
      code: 'consolidate-unknown-source',
      hint: `sources: ${lines.map((l) => l.name).join(', ')}`,
    });
  if (reference.tables.length === 0)
    throw new UsageError(`the reference ${referenceName} has no tables in schema ${schema}`, {
      code: 'consolidate-no-tables',
      hint: 'pass --source-schema for the schema that holds them',
    });
  const drifts = compareShapes(reference, shapes);
  if (drifts.length > 0) throw driftError(drifts, referenceName);
  await withReadOnly(options.url, (client) => ensureTargetFree(client, options, reference));
  const sourcesPath = relative(join(options.dir, 'backfills'), resolve(file)).split(sep).join('/');
  const rows = new Map([...bounds].map(([name, b]) => [name, b.total]));
  const sources = shapes.map((shape, i): ConsolidateSource => ({
    name: shape.source,
    schema: `${stagingSchemaPrefix}${shape.source}`,
    tenantId: i + 1,
    bounds: bounds.get(shape.source)?.bounds ?? {},
    rows: bounds.get(shape.source)?.total ?? 0,
    tableRows: bounds.get(shape.source)?.tableRows ?? {},
    bytes: sizes.get(shape.source) ?? 0,
    database: { schema, sourcesPath },
  }));
  return { reference, sources, rows };
}

function driftError(drifts: Drift[], reference: string): UsageError {
  const sources = [...new Set(drifts.map((d) => d.source))];
  return new UsageError(
    `${sources.length} source${sources.length === 1 ? '' : 's'} drifted from the reference ${reference}: ${sources.join(', ')}`,
    {
      code: 'consolidate-drift',
      hint: `bring ${sources.length === 1 ? 'it' : 'them'} to the reference's shape, or leave ${sources.length === 1 ? 'it' : 'them'} out with --exclude ${sources.join(' ')}; nothing was written`,
      details: describeDrifts(drifts),
    },
  );
}

/** The tenants table and the shared tables must not exist yet: the plan creates them. */
async function ensureTargetFree(client: pg.ClientBase, options: ReadOptions, reference: SourceShape): Promise<void> {
  const wanted = [options.tenants, ...reference.tables.map((t) => t.catalog.table)];
  const { rows } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = ANY($2) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`,
    [options.into, wanted],
  );
  const { rows: ids } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1', [idsSchema]);
  const taken = rows.map((r) => `${options.into}.${r.name}`);
  if ((ids[0]?.n ?? 0) > 0) taken.push(`schema ${idsSchema}`);
  if (taken.length > 0) {
    throw new UsageError(
      `${taken.join(', ')} exist${taken.length === 1 ? 's' : ''} already in the target: tenancy consolidate creates the shared tables itself`,
      {
        code: 'consolidate-target-exists',
        hint: 'pass --into SCHEMA for a schema of their own (or --tenants NAME), or drop them; nothing was written',
      },
    );
  }
}

function quoteId(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
