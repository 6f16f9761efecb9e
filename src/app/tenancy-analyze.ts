/**
 * tenancy analyze: the model from the config (flags over it), the catalog read in one
 * read-only transaction, the foreign-key graph, and the data counts on a few connections
 * sharing that transaction's snapshot. Nothing is written to the database and no ledger is
 * created. `--fixture` analyzes a SQL file loaded into a throwaway PostgreSQL instead.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withSession } from '../db/connection.js';
import { withTransaction } from '../db/transaction.js';
import { withFixtureDatabase } from '../db/fixture.js';
import { PlanError, UsageError } from '../errors.js';
import { configFileName, configSchema, loadConfig } from '../plan/config.js';
import {
  ambiguityQueries,
  countQueries,
  preferredCandidates,
  runAmbiguityCounts,
  runCounts,
  withCandidateConflicts,
  withCounts,
} from '../tenancy/analyze-data.js';
import { readCatalog } from '../tenancy/catalog.js';
import { analyzeTenancy, ownerHints } from '../tenancy/graph.js';
import { ensureKeyTypes } from '../tenancy/key-type.js';
import { tenancyConfigFrom } from '../tenancy/model.js';
import type { Catalog, TenancyAnalysis, TenancyConfig, TenantTableConfig } from '../tenancy/types.js';
import { writtenName } from '../tenancy/sql-text.js';

export interface AnalyzeOptions {
  /** The database to read (else the PG* variables)... */
  url?: string | undefined;
  /** ...or a SQL file loaded into a throwaway PostgreSQL. */
  fixture?: string | undefined;
  /** The plan directory holding tenantify.config.json. */
  dir: string;
  owner?: string | undefined;
  tenants?: string | undefined;
  key?: string | undefined;
  schemas?: string[] | undefined;
  /** Count unresolved rows and conflicts (default true). */
  data?: boolean;
  /** Connections for the counts (default 3). */
  connections?: number;
  /** A server to load the fixture on instead of a throwaway one (it gets a new database, dropped after). */
  fixtureServerUrl?: string | undefined;
  onProgress?: (done: number, total: number, running: string) => void;
  log?: (line: string) => void;
}

export interface AnalyzeResult {
  /** Where it read from (no password). */
  database: string;
  /** The model analyzed: the config's, with the flags over it. */
  model: TenancyConfig;
  catalog: Catalog;
  analysis: TenancyAnalysis;
  /** The counts were taken. */
  data: boolean;
  durationMs: { catalog: number; data: number };
}

/** Counts that run longer than this stop with a hint, unless the config says otherwise. */
const defaultStatementTimeoutMs = 10 * 60_000;

export async function analyze(options: AnalyzeOptions): Promise<AnalyzeResult> {
  if (options.url && options.fixture)
    throw new UsageError('analyze reads one database: -d <url> or --fixture <file.sql>, not both', { code: 'source-conflict' });
  const config = await loadConfig(options.dir);
  const notes: string[] = [];
  const model = tenancyConfigFrom(config.tenancy, { owner: options.owner, tenants: options.tenants, key: options.key }, (note) =>
    notes.push(note),
  );
  const withNotes = (result: AnalyzeResult): AnalyzeResult =>
    notes.length === 0
      ? result
      : {
          ...result,
          analysis: {
            ...result.analysis,
            hints: [...notes.map((hint) => ({ table: result.analysis.owner, hint })), ...result.analysis.hints],
          },
        };
  if (!options.fixture) return withNotes(await analyzeDatabase(options.url, model, config.ledgerSchema, config.statementTimeout, options));

  const fixture = options.fixture;
  const result = await withFixtureDatabase(
    fixture,
    { serverUrl: options.fixtureServerUrl, log: options.log, purpose: 'tenancy analyze' },
    (url) => analyzeDatabase(url, model, config.ledgerSchema, config.statementTimeout, options),
  );
  return withNotes({ ...result, database: `${fixture} (on a throwaway PostgreSQL)` });
}

async function analyzeDatabase(
  url: string | undefined,
  model: TenancyConfig,
  ledgerSchema: string,
  statementTimeout: number | undefined,
  options: AnalyzeOptions,
): Promise<AnalyzeResult> {
  return withSession(url, 'tenancy analyze (read only)', async (session) => {
    const { client } = session;
    const started = performance.now();
    // REPEATABLE READ so the counts, on other connections, read this very snapshot.
    return withTransaction(client, { isolation: 'repeatable read', readOnly: true }, async () => {
      const catalog = await readCatalog(client, {
        ...(options.schemas ? { schemas: options.schemas } : {}),
        excludeSchemas: [ledgerSchema],
      });
      let analysis = analyzeTenancy(catalog, model);
      ensureKeyTypes(analysis, catalog);
      const catalogMs = performance.now() - started;
      const wantData = options.data !== false;
      if (wantData) {
        // Ties between paths are settled by the data first: the one with the fewest conflicting rows.
        const ambiguity = await runAmbiguityCounts(client, ambiguityQueries(analysis, catalog));
        if (ambiguity.size > 0)
          analysis = withCandidateConflicts(analyzeTenancy(catalog, model, { prefer: preferredCandidates(ambiguity) }), ambiguity);
        const snapshot = await exportSnapshot(client);
        const counts = await runCounts(url, countQueries(analysis, catalog), {
          connections: options.connections ?? 3,
          statementTimeoutMs: statementTimeout ?? defaultStatementTimeoutMs,
          snapshot,
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        });
        analysis = withCounts(analysis, counts);
        const known = new Set(analysis.hints.map((h) => h.hint));
        analysis = {
          ...analysis,
          hints: [...ownerHints(analysis.owner, analysis.tables).filter((h) => !known.has(h.hint)), ...analysis.hints],
        };
      }
      return {
        database: session.description,
        model,
        catalog,
        analysis,
        data: wantData,
        durationMs: { catalog: Math.round(catalogMs), data: Math.round(performance.now() - started - catalogMs) },
      };
    });
  });
}

/** The snapshot the counts share; none where exporting is refused (they then take their own). */
async function exportSnapshot(client: { query: (sql: string) => Promise<{ rows: { id?: string }[] }> }): Promise<string | undefined> {
  try {
    await client.query('SAVEPOINT export_snapshot');
    const { rows } = await client.query('SELECT pg_export_snapshot() AS id');
    await client.query('RELEASE SAVEPOINT export_snapshot');
    return rows[0]?.id;
  } catch {
    await client.query('ROLLBACK TO SAVEPOINT export_snapshot').catch(() => {});
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// --write
// ---------------------------------------------------------------------------------------

/**
 * The model as it goes into tenantify.config.json: the analyzed names (schema left out for
 * public), the defaults written out so a reader sees them, the per-table settings kept.
 */
export function modelToWrite(model: TenancyConfig, analysis: TenancyAnalysis): TenancyConfig {
  const short = (name: string): string => writtenName(name);
  const tables = { ...model.tables, ...dataChoices(model, analysis, short) };
  return {
    owner: short(analysis.owner),
    tenants: short(analysis.tenants),
    key: analysis.key,
    setting: analysis.setting,
    rls: analysis.rls,
    ...(Object.keys(tables).length > 0 ? { tables } : {}),
  };
}

/**
 * Ties the data settled against the column names' order, as `via`: scaffold reads no data,
 * so the model says which path analyze chose and why it would not be found by name.
 */
function dataChoices(model: TenancyConfig, analysis: TenancyAnalysis, short: (name: string) => string): Record<string, TenantTableConfig> {
  const choices: Record<string, TenantTableConfig> = {};
  for (const t of analysis.tables) {
    const chosen = t.ambiguous?.find((c) => c.chosen);
    if (!t.ambiguous || !chosen || chosen.conflicts === undefined) continue;
    const byName = [...t.ambiguous].sort((a, b) =>
      a.columns.join(',') < b.columns.join(',') ? -1 : a.columns.join(',') > b.columns.join(',') ? 1 : 0,
    )[0];
    if (byName === chosen) continue;
    const name = short(t.table);
    const existing = model.tables?.[name] ?? model.tables?.[t.table];
    if (existing !== undefined) continue;
    choices[name] = { via: [chosen.columns.join(',')] };
  }
  return choices;
}

/** Stores the model under `tenancy`, creating the file when absent and keeping every other key. */
export async function writeTenancyModel(dir: string, model: TenancyConfig): Promise<string> {
  const file = join(dir, configFileName);
  let document: Record<string, unknown> = {};
  let indent = 2;
  try {
    const text = await readFile(file, 'utf8');
    document = JSON.parse(text) as Record<string, unknown>;
    indent = /^\{\s*\n(\s+)"/.exec(text)?.[1]?.length ?? 2;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new PlanError(`cannot be updated: ${(error as Error).message}`, { code: 'config-unwritable', file: configFileName });
  }
  document['tenancy'] = model;
  // What is written must load back: checked before the file is touched.
  const check = configSchema.safeParse(document);
  if (!check.success) throw new Error(`the tenancy model to write does not validate: ${JSON.stringify(check.error.issues[0])}`);
  await writeFile(file, `${JSON.stringify(document, null, indent)}\n`);
  return file;
}
