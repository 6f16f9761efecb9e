/**
 * The data side of `tenancy analyze`: exact counts of unresolved rows per tenant table and
 * of conflicts per consistency edge. The SQL text is built here by pure functions (one
 * query per table or edge, joins along the derivation path, COALESCE over fallbacks), and
 * run on a few connections that share one read-only snapshot.
 *
 * Counts the constraints already prove are not queried: a table whose path is all NOT NULL
 * and all validated foreign keys has no unresolved row.
 */
import pg from 'pg';
import { ExitCode, TenantifyError } from '../errors.js';
import { clientTypes } from '../db/connection.js';
import { withTransaction } from '../db/transaction.js';
import { quoteIdent, quoteQualified } from './sql-text.js';
import type { Catalog, CatalogTable, ConsistencyEdge, Hop, TableAnalysis, TableName, TenancyAnalysis } from './types.js';

export interface CountQuery {
  kind: 'unresolved' | 'conflicts';
  table: TableName;
  /** Conflicts: the edge's constraint. */
  constraint?: string;
  /** What it counts, for the progress line. */
  label: string;
  sql: string;
  /** The table's estimated rows: big ones are started first. */
  weight: number;
}

interface Derivation {
  joins: string[];
  /** SQL expressions of the owner key the row resolves to (all NULL when unresolved). */
  tenant: string[];
}

class Context {
  private readonly tables: Map<TableName, CatalogTable>;
  private readonly byTable: Map<TableName, TableAnalysis>;
  readonly ownerKey: string[];

  constructor(
    readonly analysis: TenancyAnalysis,
    catalog: Catalog,
  ) {
    this.tables = new Map(catalog.tables.map((t) => [t.name, t]));
    this.byTable = new Map(analysis.tables.map((t) => [t.table, t]));
    const owner = this.tables.get(analysis.owner);
    this.ownerKey = owner?.primaryKey ?? owner?.uniques[0]?.columns ?? ['id'];
  }

  table(name: TableName): TableAnalysis | undefined {
    return this.byTable.get(name);
  }

  validated(hop: Hop): boolean {
    return this.tables.get(hop.table)?.foreignKeys.find((fk) => fk.name === hop.constraint)?.validated ?? false;
  }

  /**
   * Joins that lead a row of `table` (alias `alias`) to its owner, and the owner key they
   * yield. `inner`: the caller only wants resolved rows, so a path without fallbacks joins
   * inner (the planner's favourite); else every join is LEFT and fallbacks COALESCE.
   */
  derive(name: TableName, alias: string, inner: boolean): Derivation {
    if (name === this.analysis.owner) return { joins: [], tenant: this.ownerKey.map((c) => `${alias}.${quoteIdent(c)}`) };
    const table = this.table(name);
    if (!table || table.via.length === 0) return { joins: [], tenant: this.ownerKey.map(() => 'NULL') };
    const paths = [table.via, ...table.fallbacks];
    const joins: string[] = [];
    const tenants = paths.map((path, p) => {
      const join = inner && paths.length === 1 ? 'JOIN' : 'LEFT JOIN';
      let previous = alias;
      for (const [i, hop] of path.entries()) {
        const last = i === path.length - 1;
        // The last hop into the owner by its key, validated: the key is the column itself.
        if (last && sameColumns(hop.referencedColumns, this.ownerKey) && this.validated(hop)) {
          const from = previous;
          return hop.columns.map((c) => `${from}.${quoteIdent(c)}`);
        }
        const next = `${alias}_${p > 0 ? String.fromCharCode(97 + p) : ''}${i + 1}`;
        joins.push(`${join} ${quoteQualified(hop.references)} ${next} ON ${on(next, hop.referencedColumns, previous, hop.columns)}`);
        previous = next;
      }
      return this.ownerKey.map((c) => `${previous}.${quoteIdent(c)}`);
    });
    return { joins, tenant: coalesce(tenants) };
  }
}

function sameColumns(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((c, i) => c === b[i]);
}

function on(alias: string, columns: string[], from: string, fromColumns: string[]): string {
  return columns.map((c, i) => `${alias}.${quoteIdent(c)} = ${from}.${quoteIdent(fromColumns[i] as string)}`).join(' AND ');
}

/** The first path that resolves wins: COALESCE per key column, or CASE for a composite owner key. */
function coalesce(tenants: string[][]): string[] {
  const [first, ...rest] = tenants;
  if (!first) return [];
  if (rest.length === 0) return first;
  if (first.length === 1) return [`coalesce(${tenants.map((t) => t[0]).join(', ')})`];
  return [`CASE ${tenants.map((t) => `WHEN ${t[0]} IS NOT NULL THEN ROW(${t.join(', ')})`).join(' ')} END`];
}

function tenantValue(tenant: string[]): string {
  return tenant.length === 1 ? (tenant[0] as string) : `ROW(${tenant.join(', ')})`;
}

/** Every count analyze runs, biggest tables first. */
export function countQueries(analysis: TenancyAnalysis, catalog: Catalog): CountQuery[] {
  const context = new Context(analysis, catalog);
  const queries: CountQuery[] = [];
  for (const table of analysis.tables) {
    if (table.role === 'tenant' && !provablyResolved(table, context)) {
      queries.push({
        kind: 'unresolved',
        table: table.table,
        label: `unresolved rows of ${table.table}`,
        sql: unresolvedSql(table, context),
        weight: table.estimatedRows,
      });
    }
    if (table.role === 'tenant' || table.role === 'owner') {
      for (const edge of table.consistency) {
        queries.push({
          kind: 'conflicts',
          table: table.table,
          constraint: edge.constraint,
          label: `conflicts of ${table.table}.${edge.columns.join(',')}`,
          sql: conflictSql(table, edge, context),
          weight: table.estimatedRows,
        });
      }
    }
  }
  return queries.sort((a, b) => b.weight - a.weight);
}

function provablyResolved(table: TableAnalysis, context: Context): boolean {
  return table.via.length > 0 && table.via.every((hop) => !hop.nullable && context.validated(hop));
}

function unresolvedSql(table: TableAnalysis, context: Context): string {
  const { joins, tenant } = context.derive(table.table, 't', false);
  return [
    `SELECT count(*) AS n FROM ${quoteQualified(table.table)} t`,
    ...joins.map((j) => `  ${j}`),
    ` WHERE ${tenantValue(tenant)} IS NULL`,
  ].join('\n');
}

/**
 * Rows whose edge leads to a row of another tenant than their own derivation: both sides
 * resolved (an unresolved side is counted as unresolved, not as a conflict) and different.
 */
function conflictSql(table: TableAnalysis, edge: ConsistencyEdge, context: Context): string {
  const own = context.derive(table.table, 't', true);
  const ownerKey = context.ownerKey;
  const toOwnerByKey =
    edge.references === context.analysis.owner &&
    sameColumns(edge.referencedColumns, ownerKey) &&
    context.validated({ table: table.table, constraint: edge.constraint } as Hop);
  let joins: string[];
  let theirs: string[];
  if (toOwnerByKey) {
    // A validated reference to the owner's key names the tenant itself.
    joins = [];
    theirs = edge.columns.map((c) => `t.${quoteIdent(c)}`);
  } else {
    const other = context.derive(edge.references, 'r', true);
    joins = [`JOIN ${quoteQualified(edge.references)} r ON ${on('r', edge.referencedColumns, 't', edge.columns)}`, ...other.joins];
    theirs = other.tenant;
  }
  const mine = tenantValue(own.tenant);
  const their = tenantValue(theirs);
  return [
    `SELECT count(*) AS n FROM ${quoteQualified(table.table)} t`,
    ...[...own.joins, ...joins].map((j) => `  ${j}`),
    ` WHERE ${mine} IS NOT NULL AND ${their} IS NOT NULL AND ${mine} <> ${their}`,
  ].join('\n');
}

/**
 * Tables whose path was a tie (paths as short, as many NOT NULL hops, starting with other
 * foreign keys): one query per table counting, for each pair of candidates, the rows they
 * send to different tenants. A candidate's conflicts are its pairs' sum: the rows that would
 * conflict, along the others, if it were chosen.
 */
export interface AmbiguityQuery {
  table: TableName;
  /** The candidates' first-hop constraints, in the analysis' order. */
  candidates: string[];
  sql: string;
}

export function ambiguityQueries(analysis: TenancyAnalysis, catalog: Catalog): AmbiguityQuery[] {
  const context = new Context(analysis, catalog);
  const tables = new Map(catalog.tables.map((t) => [t.name, t]));
  const queries: AmbiguityQuery[] = [];
  for (const table of analysis.tables) {
    const candidates = table.ambiguous ?? [];
    if (table.role !== 'tenant' || candidates.length < 2) continue;
    const joins: string[] = [];
    const tenants = candidates.map((c, i) => {
      const fk = tables.get(table.table)?.foreignKeys.find((f) => f.name === c.constraint);
      const alias = `c${i}`;
      joins.push(`LEFT JOIN ${quoteQualified(c.references)} ${alias} ON ${on(alias, fk?.referencedColumns ?? [], 't', c.columns)}`);
      const parent = context.derive(c.references, alias, false);
      joins.push(...parent.joins);
      return tenantValue(parent.tenant);
    });
    const pairs: string[] = [];
    for (let i = 0; i < tenants.length; i++) {
      for (let j = i + 1; j < tenants.length; j++) {
        pairs.push(
          `count(*) FILTER (WHERE ${tenants[i]} IS NOT NULL AND ${tenants[j]} IS NOT NULL AND ${tenants[i]} <> ${tenants[j]}) AS "d${i}_${j}"`,
        );
      }
    }
    queries.push({
      table: table.table,
      candidates: candidates.map((c) => c.constraint),
      sql: [`SELECT ${pairs.join(',\n       ')}`, `  FROM ${quoteQualified(table.table)} t`, ...joins.map((j) => `  ${j}`)].join('\n'),
    });
  }
  return queries;
}

/** From a query's pair counts, each candidate's conflicts (the sum of its pairs). */
export function candidateConflicts(query: AmbiguityQuery, row: Record<string, string | number>): Map<string, number> {
  const result = new Map<string, number>(query.candidates.map((c) => [c, 0]));
  for (let i = 0; i < query.candidates.length; i++) {
    for (let j = i + 1; j < query.candidates.length; j++) {
      const n = Number(row[`d${i}_${j}`] ?? 0);
      const a = query.candidates[i] as string;
      const b = query.candidates[j] as string;
      result.set(a, (result.get(a) ?? 0) + n);
      result.set(b, (result.get(b) ?? 0) + n);
    }
  }
  return result;
}

/** Per table, the candidate with the fewest conflicts (the first, in name order, among equals). */
export function preferredCandidates(conflicts: Map<TableName, Map<string, number>>): Map<TableName, string> {
  const prefer = new Map<TableName, string>();
  for (const [table, counts] of conflicts) {
    let best: [string, number] | undefined;
    for (const entry of counts) if (!best || entry[1] < best[1]) best = entry;
    if (best) prefer.set(table, best[0]);
  }
  return prefer;
}

/** The analysis with each ambiguous choice's conflict count. */
export function withCandidateConflicts(analysis: TenancyAnalysis, conflicts: Map<TableName, Map<string, number>>): TenancyAnalysis {
  return {
    ...analysis,
    tables: analysis.tables.map((t) => {
      const counts = conflicts.get(t.table);
      if (!t.ambiguous || !counts) return t;
      return { ...t, ambiguous: t.ambiguous.map((c) => ({ ...c, conflicts: counts.get(c.constraint) ?? 0 })) };
    }),
  };
}

/** Runs the ambiguity queries, one after the other, on the given client (inside its read-only snapshot). */
export async function runAmbiguityCounts(client: pg.ClientBase, queries: AmbiguityQuery[]): Promise<Map<TableName, Map<string, number>>> {
  const result = new Map<TableName, Map<string, number>>();
  for (const query of queries) {
    const { rows } = await client.query<Record<string, string | number>>(query.sql);
    result.set(query.table, candidateConflicts(query, rows[0] ?? {}));
  }
  return result;
}

export interface CountOptions {
  /** Connections run at once. */
  connections: number;
  /** Per query, in milliseconds (0: none). */
  statementTimeoutMs: number;
  /** An exported snapshot (pg_export_snapshot()) every connection reads, so counts agree with the catalog. */
  snapshot?: string | undefined;
  onProgress?: (done: number, total: number, running: string) => void;
}

export interface CountResult {
  unresolved: Map<TableName, number>;
  /** By `table constraint`. */
  conflicts: Map<string, number>;
}

export const conflictKey = (table: TableName, constraint: string): string => `${table} ${constraint}`;

/** Runs the counts on a small pool, each connection in one read-only transaction. */
export async function runCounts(url: string | undefined, queries: CountQuery[], options: CountOptions): Promise<CountResult> {
  const result: CountResult = { unresolved: new Map(), conflicts: new Map() };
  if (queries.length === 0) return result;
  const pool = new pg.Pool({
    ...(url ? { connectionString: url } : {}),
    max: options.connections,
    types: clientTypes,
    application_name: 'tenantify tenancy analyze (read only)',
  });
  pool.on('error', () => {});
  const queue = [...queries];
  let done = 0;
  const running = new Set<string>();
  const progress = (): void => options.onProgress?.(done, queries.length, [...running].join(', '));
  const worker = async (): Promise<void> => {
    const client = await pool.connect();
    try {
      await withTransaction(client, { isolation: 'repeatable read', readOnly: true }, async () => {
        if (options.snapshot) await client.query(`SET TRANSACTION SNAPSHOT '${options.snapshot.replace(/'/g, "''")}'`);
        await client.query(`SET LOCAL statement_timeout = ${Math.max(0, Math.round(options.statementTimeoutMs))}`);
        for (let query = queue.shift(); query; query = queue.shift()) {
          running.add(query.label);
          progress();
          const n = await count(client, query, options.statementTimeoutMs);
          if (query.kind === 'unresolved') result.unresolved.set(query.table, n);
          else result.conflicts.set(conflictKey(query.table, query.constraint as string), n);
          running.delete(query.label);
          done++;
          progress();
        }
      });
    } catch (error) {
      queue.length = 0;
      throw error;
    } finally {
      client.release();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(options.connections, queries.length) }, worker));
  } finally {
    await pool.end();
  }
  return result;
}

async function count(client: pg.PoolClient, query: CountQuery, timeoutMs: number): Promise<number> {
  try {
    const { rows } = await client.query<{ n: string | number }>(query.sql);
    return Number(rows[0]?.n ?? 0);
  } catch (error) {
    if ((error as { code?: string }).code === '57014') {
      throw new TenantifyError(`counting the ${query.label} took longer than the statement timeout (${Math.round(timeoutMs / 1000)}s)`, {
        code: 'statement-timeout',
        exitCode: ExitCode.unitFailed,
        hint: 'raise statementTimeout in tenantify.config.json, or analyze with --no-data (catalog only); the query was:',
        details: query.sql.split('\n'),
      });
    }
    throw error;
  }
}

/** The analysis with the counts filled in. */
export function withCounts(analysis: TenancyAnalysis, counts: CountResult): TenancyAnalysis {
  return {
    ...analysis,
    tables: analysis.tables.map((t) => ({
      ...t,
      ...(t.role === 'tenant' ? { unresolved: counts.unresolved.get(t.table) ?? 0 } : {}),
      consistency: t.consistency.map((e) => ({ ...e, conflicts: counts.conflicts.get(conflictKey(t.table, e.constraint)) ?? 0 })),
    })),
  };
}
