/**
 * rehearse(): the whole round trip on a throwaway PostgreSQL. The source is only read
 * (pg_dump), never written: the ledger exists only in the throwaway.
 *
 *   load → apply → verify → rollback (what it applied) → compare with the loaded state → apply → verify
 *
 * Both applies trace the locks each unit takes (lock-trace.ts): on a copy of production, or
 * a fixture grown to its size, that is what the live application will wait behind.
 *
 * With `citus`, the throwaway is a Citus cluster (a coordinator and N workers) and the
 * rehearsal runs on its coordinator: a fixture that distributes its tables rehearses a plan
 * for a Citus database, a plain source one that distributes them (tenancy scaffold --citus).
 */
import { withSession } from '../db/connection.js';
import { citusLayout, citusPlacements, placeLike } from '../db/citus.js';
import { describeDatabase, differences, type DatabaseState } from '../db/compare.js';
import { findPgTool, libpqEnvironment, runTool, streamThrough, ToolError } from '../db/pg-tools.js';
import { redact } from '../db/redact.js';
import { createScratchDatabase } from '../db/scratch-database.js';
import { startThrowawayCitus, startThrowawayPostgres } from '../db/throwaway.js';
import { UsageError, isTenantifyError } from '../errors.js';
import type { Reporter } from '../exec/context.js';
import type { LockHeld } from '../exec/lock-trace.js';
import { apply } from './apply.js';
import { loadProject } from './project.js';
import { rollback } from './rollback.js';
import { ruleOutcomes, tenancyCheck } from './tenancy-check.js';
import { verify } from './verify.js';

export interface RehearseOptions {
  dir: string;
  /** A live source database, copied with pg_dump. */
  sourceUrl?: string | undefined;
  /** Or the one the libpq variables (PGHOST, PGDATABASE...) name. */
  sourceFromEnvironment?: boolean;
  schemaOnly?: boolean;
  /** Or a SQL file loaded with psql. */
  fixture?: string | undefined;
  /** A server to rehearse on instead of a throwaway one (it gets a new database). */
  targetServerUrl?: string | undefined;
  /** Rehearse on a throwaway Citus cluster of a coordinator and this many workers. */
  citus?: { workers: number } | undefined;
  reporter: Reporter;
  log: (line: string) => void;
}

export interface RehearseStep {
  name: string;
  ok: boolean;
  durationMs: number;
  /** What went wrong, or what was found. */
  details: string[];
  /** The contract's exit code for this step's failure. */
  exitCode?: number;
  /** Per-unit outcomes of apply/rollback steps, for JUnit; an apply step's with the locks each unit took. */
  units?: { id: string; ok: boolean; durationMs: number; message?: string; locks?: LockHeld[] }[];
  /** Per-rule outcomes of a tenancy check step, for JUnit. */
  rules?: { id: string; ok: boolean; durationMs: number; message?: string }[];
}

export interface RehearseResult {
  ok: boolean;
  /** 0, or the exit code of the first step that failed. */
  exitCode: number;
  server: string;
  steps: RehearseStep[];
  /**
   * The lock trace of the first apply: per unit, the locks its transaction took on the
   * source's tables and indexes, held until its commit (`locks` absent: the unit commits as
   * it goes, and is not traced).
   */
  locks: { unit: string; locks?: LockHeld[] }[];
}

export async function rehearse(options: RehearseOptions): Promise<RehearseResult> {
  const live = Boolean(options.sourceUrl) || Boolean(options.sourceFromEnvironment);
  if (live === Boolean(options.fixture)) {
    throw new UsageError('rehearse needs one source: -d <live database> or --fixture <file.sql>', {
      code: 'source-missing',
      hint: 'e.g. tenantify rehearse --fixture fixtures/hosts-to-organizations/legacy.sql',
    });
  }
  const { config } = await loadProject(options.dir); // a plan error stops here, before any server starts
  if (options.citus && options.targetServerUrl) {
    throw new UsageError(
      '--citus starts a throwaway Citus cluster of its own: it cannot rehearse on the server TENANTIFY_REHEARSE_SERVER_URL names',
      { code: 'citus-server-conflict', hint: 'unset TENANTIFY_REHEARSE_SERVER_URL for a Citus rehearsal, or leave --citus out' },
    );
  }
  const source = live
    ? await withSession(options.sourceUrl, 'rehearse (read only)', async (s) => ({
        major: Math.floor(s.serverVersion / 10000),
        placements: await citusPlacements(s.client),
      }))
    : undefined;
  const major = source?.major;
  if (source && source.placements.length > 0 && !options.citus) {
    throw new UsageError(
      `the source is a Citus coordinator (${source.placements.length} Citus tables): a single throwaway PostgreSQL cannot hold it`,
      { code: 'citus-source-needs-citus', hint: 'rehearse it with --citus' },
    );
  }
  const server = options.citus
    ? await citusServer(options.citus.workers, options.log)
    : await plainServer(options.targetServerUrl, major, options.log);
  const steps: RehearseStep[] = [];
  try {
    const target = await server.createTarget(`rehearsal_${Date.now().toString(36)}`);
    const run = async (name: string, body: () => Promise<Omit<RehearseStep, 'name' | 'durationMs'>>): Promise<boolean> => {
      const started = performance.now();
      let step: RehearseStep;
      try {
        step = { name, durationMs: 0, ...(await body()) };
      } catch (error) {
        const message = isTenantifyError(error) ? [error.message, ...error.details] : [redact((error as Error).message)];
        step = { name, ok: false, durationMs: 0, details: message, exitCode: isTenantifyError(error) ? error.exitCode : 1 };
      }
      step.durationMs = Math.round(performance.now() - started);
      steps.push(step);
      options.log(`${step.ok ? '✔' : '✖'} ${name} (${(step.durationMs / 1000).toFixed(1)}s)${step.ok ? '' : `: ${step.details[0] ?? ''}`}`);
      return step.ok;
    };
    let loaded: DatabaseState | undefined;
    // The units the rehearsal itself applied: the rollback reverts those (a copy that carries
    // the source's ledger may have some, or all, applied already).
    let applied = 0;
    const ok =
      (await run('load', async () => {
        await load(options, target);
        // pg_dump loads a coordinator's tables as plain tables: place them as the source does.
        const placed = source?.placements ?? [];
        if (placed.length > 0) await withSession(target, 'rehearse', (s) => placeLike(s.client, placed));
        loaded = await snapshotState(target);
        return {
          ok: true,
          details: [
            `${loaded.content.size} tables and sequences${placed.length > 0 ? `; ${placed.length} Citus tables placed as in the source` : ''}`,
          ],
        };
      })) &&
      (await run('apply', async () => {
        const step = await applyStep(options, target);
        applied = step.units?.length ?? 0;
        return step;
      })) &&
      (await run('verify', () => verifyStep(options, target))) &&
      (!config.tenancy || (await run('tenancy check', () => tenancyStep(options, target)))) &&
      (await run('rollback', () => rollbackStep(options, target, applied))) &&
      (await run('compare with the source', async () => {
        const diff = differences(loaded as DatabaseState, await snapshotState(target));
        return { ok: diff.length === 0, details: diff.length === 0 ? ['schema and content are exactly as loaded'] : diff, exitCode: 3 };
      })) &&
      (await run('apply again', () => applyStep(options, target))) &&
      (await run('verify again', () => verifyStep(options, target))) &&
      (!config.tenancy || (await run('tenancy check again', () => tenancyStep(options, target))));
    const firstFailed = steps.find((step) => !step.ok);
    const traced = steps.find((step) => step.name === 'apply')?.units ?? [];
    const locks = traced.map((u) => ({ unit: u.id, ...(u.locks ? { locks: u.locks } : {}) }));
    return { ok, exitCode: firstFailed ? (firstFailed.exitCode ?? 1) : 0, server: server.kind, steps, locks };
  } finally {
    await server.close();
  }
}

/** Where the rehearsal runs: a new database on a throwaway server (or cluster), removed with it. */
interface RehearsalServer {
  kind: string;
  createTarget(name: string): Promise<string>;
  close(): Promise<void>;
}

async function plainServer(url: string | undefined, major: number | undefined, log: (line: string) => void): Promise<RehearsalServer> {
  const server = await startThrowawayPostgres({ url, ...(major ? { majorVersion: major } : {}), log });
  return {
    kind: server.kind,
    createTarget: async (name) => {
      await withSession(server.url, 'rehearse', (s) => createScratchDatabase(s.client, name));
      const target = new URL(server.url);
      target.pathname = `/${name}`;
      return target.toString();
    },
    close: () => server.close(),
  };
}

/** A coordinator and `workers` workers; the target database has the extension and the workers registered. */
async function citusServer(workers: number, log: (line: string) => void): Promise<RehearsalServer> {
  const cluster = await startThrowawayCitus({ workers, log });
  return { kind: 'citus', createTarget: (name) => cluster.createDatabase(name), close: () => cluster.close() };
}

/** The database's objects and content, and on Citus which tables are distributed how (citus.ts). */
async function snapshotState(url: string): Promise<DatabaseState> {
  return withSession(url, 'rehearse', async (s) => {
    const state = await describeDatabase(s.client, ['tenantify']);
    for (const [key, def] of await citusLayout(s.client)) state.objects.set(key, def);
    return state;
  });
}

async function load(options: RehearseOptions, target: string): Promise<void> {
  const psql = findPgTool('psql');
  if (!psql)
    throw new UsageError('psql was not found', {
      code: 'tool-missing',
      hint: 'install the PostgreSQL client (e.g. `apt-get install -y postgresql-client`)',
    });
  const psqlArgs = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction'];
  try {
    if (options.fixture) {
      await runTool({ path: psql.path, args: [...psqlArgs, '-f', options.fixture], env: libpqEnvironment(target) });
      return;
    }
    const pgDump = findPgTool('pg_dump');
    if (!pgDump)
      throw new UsageError('pg_dump was not found', {
        code: 'tool-missing',
        hint: 'install the PostgreSQL client (e.g. `apt-get install -y postgresql-client`)',
      });
    const dumpArgs = ['--no-owner', '--no-privileges', '--no-password', ...(options.schemaOnly ? ['--schema-only'] : [])];
    // pg_dump | psql, bytes streamed: a pg_dump that fails kills psql before its input ends, so nothing half-loaded is committed.
    await streamThrough(
      { path: pgDump.path, args: dumpArgs, env: libpqEnvironment(options.sourceUrl) },
      { path: psql.path, args: [...psqlArgs, '-f', '-'], env: libpqEnvironment(target) },
    );
  } catch (error) {
    if (error instanceof ToolError) throw new Error(`loading the source failed: ${error.message}`);
    throw error;
  }
}

async function applyStep(options: RehearseOptions, target: string): Promise<Omit<RehearseStep, 'name' | 'durationMs'>> {
  try {
    const result = await apply({ dir: options.dir, url: target, reporter: options.reporter, noSnapshot: true, traceLocks: true });
    const units = result.units.map((u) => ({
      id: u.id,
      ok: u.outcome === 'applied',
      durationMs: u.durationMs,
      ...(u.locks ? { locks: u.locks } : {}),
    }));
    const already = result.plan.entries.filter((e) => e.status === 'applied').length;
    if (units.length === 0 && already > 0 && already === result.plan.entries.length) {
      return {
        ok: true,
        details: [
          `every unit (${already}) is already applied in the source: its ledger came with the copy, so there is nothing new to rehearse (rehearse a database from before the plan, or --fixture)`,
        ],
        units,
      };
    }
    return {
      ok: true,
      details: [`${units.length} units applied${already > 0 ? ` (${already} already applied in the source, by its ledger)` : ''}`],
      units,
    };
  } catch (error) {
    return failed(error);
  }
}

async function verifyStep(options: RehearseOptions, target: string): Promise<Omit<RehearseStep, 'name' | 'durationMs'>> {
  const result = await verify({ dir: options.dir, url: target });
  const failedChecks = result.checks.filter((c) => !c.ok);
  return {
    ok: result.ok,
    exitCode: 3,
    details: result.ok
      ? [`${result.checks.length} checks passed`]
      : failedChecks.map((c) => `${c.unit}: "${c.name}" returned ${c.violations} rows${c.error ? ` (${c.error})` : ''}`),
    units: result.units.map((u) => ({
      id: u.id,
      ok: u.checks.every((c) => c.ok),
      durationMs: u.checks.reduce((t, c) => t + c.durationMs, 0),
    })),
  };
}

/** The plan's tenancy model holds on the applied database: `tenancy check`, a JUnit case per rule. */
async function tenancyStep(options: RehearseOptions, target: string): Promise<Omit<RehearseStep, 'name' | 'durationMs'>> {
  const started = performance.now();
  const result = await tenancyCheck({ dir: options.dir, url: target });
  const rules = ruleOutcomes(result, Math.round(performance.now() - started));
  const errors = result.findings.filter((f) => f.level === 'error');
  return {
    ok: result.ok,
    exitCode: 3,
    details: result.ok
      ? [`${result.passed.length} of ${result.checked.rules} rules passed on ${result.checked.tables} tables`]
      : errors.map((f) => `${f.rule} ${f.table}: ${f.detail}`),
    rules,
  };
}

async function rollbackStep(options: RehearseOptions, target: string, count: number): Promise<Omit<RehearseStep, 'name' | 'durationMs'>> {
  if (count === 0) return { ok: true, details: ['nothing to revert: the rehearsal applied no unit'], units: [] };
  try {
    const result = await rollback({
      dir: options.dir,
      url: target,
      steps: count,
      reporter: {
        revertStarted: () => {},
        revertDone: () => {},
        revertFailed: (_unit, message) => options.reporter.note(message),
        note: (text) => options.reporter.note(text),
      },
      confirm: async () => true,
    });
    const units = result.units.map((u) => ({ id: u.id, ok: true, durationMs: u.durationMs }));
    return { ok: true, details: [`${units.length} units reverted`], units };
  } catch (error) {
    return failed(error);
  }
}

function failed(error: unknown): Omit<RehearseStep, 'name' | 'durationMs'> {
  if (isTenantifyError(error))
    return {
      ok: false,
      exitCode: error.exitCode,
      details: [error.message, ...error.details, ...(error.hint ? [`hint: ${error.hint}`] : [])],
    };
  throw error;
}
