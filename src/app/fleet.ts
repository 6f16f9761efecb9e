/**
 * Fleets: one plan across many databases (`apply | verify | status | rollback --targets`).
 * Each target is run by the same app function a single database is (apply, verify, inspect,
 * rollback): it keeps its own ledger and lock, and whatever happens to one target (it is
 * unreachable, locked, a unit fails on its data) is reported by its name and harms no other.
 * Which target starts when is the pure scheduler's call (fleet/schedule.ts).
 */
import { setMaxListeners } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withSession } from '../db/connection.js';
import { snapshotDirectory } from '../db/snapshot.js';
import { ExitCode, UsageError, ViolationsError, isTenantifyError } from '../errors.js';
import { redact, rememberUrlSecrets } from '../db/redact.js';
import type { Reporter, RevertReporter } from '../exec/context.js';
import { connectionBudget, heldBack, targetsToStart, type Held, type ScheduleOptions, type TargetPhase } from '../fleet/schedule.js';
import { parseTargets, targetsFromRows, type Target } from '../fleet/targets.js';
import { loadConfig } from '../plan/config.js';
import type { RollbackEntry } from '../plan/planner.js';
import { apply } from './apply.js';
import { inspect, type Inspection } from './inspect.js';
import { rollback } from './rollback.js';
import { verify } from './verify.js';

export type { Target } from '../fleet/targets.js';

/**
 * Where a target stands once the command is done with it:
 * - `up-to-date`: every unit applied; `pending`: units left to run (or a dry run's, rolled back);
 * - `running`: another run is applying it now; `died`: its last run died (the next apply resumes it);
 * - `failed`, `violations`, `locked`, `drift`, `refused`, `unreachable`: the command failed on it (see `error`);
 * - `interrupted`: SIGINT stopped it at a safe point; `stopped`: the fleet stopped it at a safe
 *   point because another target failed (`--on-error stop`); `skipped`: not started (see `held`).
 */
export type TargetStatus =
  | 'up-to-date'
  | 'pending'
  | 'running'
  | 'died'
  | 'failed'
  | 'violations'
  | 'locked'
  | 'drift'
  | 'refused'
  | 'unreachable'
  | 'interrupted'
  | 'stopped'
  | 'skipped';

export interface FleetTargetResult {
  name: string;
  status: TargetStatus;
  /** Units applied, per the target's ledger (null when it could not be read). */
  applied: number | null;
  /** Units left to run, per the target's ledger (null when it could not be read). */
  pending: number | null;
  /** Where it stands: the next unit to run, else the last one applied. */
  unit: string | null;
  /** Why the command failed on this target; never a password. */
  error: { code: string; message: string; exitCode: number; hint: string | null } | null;
  /** This target's exit code, as the single-database command would have returned it. */
  exitCode: number;
  /** The units this command ran (applied, rolled back, or a dry run's), in order. */
  ran: string[];
  /** verify: the checks that failed, of how many. */
  checks?: { failed: number; total: number };
  /** skipped: why the fleet did not start it. */
  held?: Held;
}

export interface FleetResult {
  targets: FleetTargetResult[];
  /** The worst target's exit code (130 once interrupted). */
  exitCode: number;
  /** Why targets were left unstarted, when some were. */
  held: Held | undefined;
}

/** How a fleet run is shown (ui/fleet-view.ts); every method optional. */
export interface FleetObserver {
  started?(target: Target): void;
  /** The reporter for this target's units (apply); by default none. */
  reporter?(target: Target): Reporter;
  ended?(result: FleetTargetResult): void;
  note?(target: Target | undefined, text: string): void;
}

export interface FleetOptions {
  dir: string;
  targets: Target[];
  /** Connections the fleet opens at most (default 1: one target at a time); see connectionBudget. */
  parallel?: number | undefined;
  /** The first N targets run first, alone; one that fails stops the fleet. */
  canary?: number | undefined;
  /** `stop` (default): a failed target stops the fleet (running targets end their unit); `continue` goes on. */
  onError?: 'stop' | 'continue' | undefined;
  /** Aborted with reason 'SIGINT' or 'SIGTERM': every running target stops at a safe point, no other starts. */
  stop?: AbortSignal | undefined;
  observer?: FleetObserver | undefined;
}

export interface ApplyFleetOptions extends FleetOptions {
  to?: string | undefined;
  dryRun?: boolean | undefined;
  noSnapshot?: boolean | undefined;
  autoRollback?: boolean | undefined;
}

export interface VerifyFleetOptions extends FleetOptions {
  unit?: string | undefined;
}

export interface RollbackFleetOptions extends FleetOptions {
  steps?: number | undefined;
  to?: string | undefined;
  all?: boolean | undefined;
  fromSnapshot?: boolean | undefined;
  /** Asked per target once its rollback is planned; the CLI asks once for the fleet before and answers true. */
  confirm: (target: Target, entries: RollbackEntry[]) => Promise<boolean>;
  reporter?: ((target: Target) => RevertReporter) | undefined;
}

/** What the command did on one target, when it did not throw. */
interface Done {
  ran?: string[];
  checks?: { failed: number; total: number };
  /** The command read the target's standing itself (status). */
  inspection?: Inspection;
}

interface Running {
  target: Target;
  stop: AbortSignal;
  /** Backfill workers this target may use (its share of --parallel). */
  workers: number;
  canary: boolean;
}

const fleetStop = 'the fleet stopping (another target failed)';

/** `apply --targets`: the plan's pending units on every target; canaries are verified again before the others start. */
export async function applyFleet(options: ApplyFleetOptions): Promise<FleetResult> {
  const config = await loadConfig(options.dir);
  const snapshotRoot = snapshotDirectory(options.dir, config.snapshotDir);
  const warned = new Set<string>();
  return runFleet(options, async ({ target, stop, workers, canary }) => {
    const result = await apply({
      dir: options.dir,
      url: target.url,
      to: options.to,
      dryRun: Boolean(options.dryRun),
      noSnapshot: Boolean(options.noSnapshot),
      autoRollback: Boolean(options.autoRollback),
      parallel: workers,
      // Run numbers repeat across databases: each target's snapshots in a directory of its own.
      snapshotDir: join(snapshotRoot, target.name),
      reporter: options.observer?.reporter?.(target) ?? silentReporter,
      stop,
      warn: (text) => {
        // The same plan directory's warning for every target: once.
        if (!warned.has(text)) options.observer?.note?.(undefined, text);
        warned.add(text);
      },
    });
    const ran = result.units.filter((u) => u.outcome === 'applied').map((u) => u.id);
    if (canary && !result.dryRun) {
      // A canary is applied, then verified as `tenantify verify` would, before any other target starts.
      const checked = await verify({ dir: options.dir, url: target.url });
      const failed = checked.checks.filter((c) => !c.ok);
      if (failed.length > 0) {
        throw new ViolationsError(
          `canary ${target.name}: ${failed.length} verify check${failed.length === 1 ? '' : 's'} failed after its apply (${failed.map((c) => `${c.unit}: ${c.name}`).join('; ')})`,
          {
            code: 'canary-verify-failed',
            hint: `run \`tenantify verify -d <${target.name}>\` to see the rows; no other target was started`,
          },
        );
      }
    }
    return { ran };
  });
}

/** `verify --targets`: each target's stored verify queries; a target with a failed check is `violations`. */
export async function verifyFleet(options: VerifyFleetOptions): Promise<FleetResult> {
  return runFleet(
    options,
    async ({ target }) => {
      const result = await verify({ dir: options.dir, url: target.url, unit: options.unit });
      const failed = result.checks.filter((c) => !c.ok);
      if (failed.length > 0) {
        throw Object.assign(
          new ViolationsError(
            `${failed.length} of ${result.checks.length} verify checks failed: ${failed.map((c) => `${c.unit}: ${c.name}`).join('; ')}`,
            { code: 'violations', hint: `run \`tenantify verify -d <${target.name}>\` to see the rows` },
          ),
          { checks: { failed: failed.length, total: result.checks.length } },
        );
      }
      return { checks: { failed: 0, total: result.checks.length } };
    },
    { onError: 'continue' },
  );
}

/** `status --targets`: where each target stands, per its own ledger; read-only. */
export async function statusFleet(options: FleetOptions): Promise<FleetResult> {
  return runFleet(options, async ({ target }) => ({ inspection: await inspect({ dir: options.dir, url: target.url }) }), {
    onError: 'continue',
  });
}

/** `rollback --targets`: the same rollback (bare, --steps, --to, --all) on every target. */
export async function rollbackFleet(options: RollbackFleetOptions): Promise<FleetResult> {
  return runFleet(options, async ({ target, stop }) => {
    const result = await rollback({
      dir: options.dir,
      url: target.url,
      steps: options.steps,
      to: options.to,
      all: options.all,
      fromSnapshot: options.fromSnapshot,
      reporter: options.reporter?.(target) ?? silentRevertReporter,
      confirm: (entries) => options.confirm(target, entries),
      stop,
    });
    return { ran: result.units.filter((u) => u.outcome === 'rolled_back').map((u) => u.id) };
  });
}

/**
 * The runner: starts what the scheduler says, as slots free; each target's outcome becomes
 * its row; a target never throws out of here (a bug on one is reported as its error).
 */
async function runFleet(
  options: FleetOptions,
  operate: (run: Running) => Promise<Done>,
  overrides: Partial<ScheduleOptions> = {},
): Promise<FleetResult> {
  const { targets } = options;
  if (targets.length === 0) throw new UsageError('the fleet has no targets', { code: 'targets-empty' });
  const budget = connectionBudget(options.parallel ?? 1, targets.length);
  const schedule: ScheduleOptions = {
    canary: options.canary ?? 0,
    atOnce: budget.atOnce,
    onError: options.onError ?? 'stop',
    ...overrides,
  };
  const phases: TargetPhase[] = targets.map(() => 'waiting');
  const results: (FleetTargetResult | undefined)[] = targets.map(() => undefined);
  const stopping = new AbortController();
  const stop = options.stop ? AbortSignal.any([options.stop, stopping.signal]) : stopping.signal;
  // Every running target listens to it: as many listeners as targets at once, no leak.
  setMaxListeners(budget.atOnce + 10, stop);

  const runOne = async (index: number): Promise<void> => {
    const target = targets[index] as Target;
    options.observer?.started?.(target);
    let done: Done | undefined;
    let failure: unknown;
    try {
      done = await operate({ target, stop, workers: budget.workersPerTarget, canary: index < schedule.canary });
    } catch (error) {
      failure = error;
    }
    const inspection = done?.inspection ?? (await inspect({ dir: options.dir, url: target.url }).catch(() => undefined));
    const stoppedByFleet = stopping.signal.aborted && !options.stop?.aborted;
    const result = targetResult(target, done, failure, inspection, stoppedByFleet);
    results[index] = result;
    phases[index] = result.exitCode === 0 ? 'succeeded' : 'failed';
    options.observer?.ended?.(result);
    // A failure that holds the fleet back stops the running targets at their next safe point, without cancelling.
    if (heldBack(phases, schedule) && !stopping.signal.aborted) stopping.abort(fleetStop);
  };

  await new Promise<void>((resolve) => {
    const pump = (): void => {
      for (const index of targetsToStart(phases, schedule, Boolean(options.stop?.aborted))) {
        phases[index] = 'running';
        void runOne(index).then(pump);
      }
      if (!phases.includes('running')) resolve();
    };
    pump();
  });

  const held = heldBack(phases, schedule, Boolean(options.stop?.aborted));
  const rows = targets.map((target, i) => results[i] ?? skipped(target, held ?? 'interrupted'));
  const worst = Math.max(0, ...rows.map((r) => r.exitCode));
  return {
    targets: rows,
    exitCode: options.stop?.aborted ? ExitCode.interrupted : worst,
    held: rows.some((r) => r.status === 'skipped') ? held : undefined,
  };
}

/** One target's row: where its ledger says it stands, and the command's error if it failed. */
export function targetResult(
  target: Target,
  done: Done | undefined,
  failure: unknown,
  inspection: Inspection | undefined,
  stoppedByFleet = false,
): FleetTargetResult {
  const entries = inspection?.plan.entries ?? [];
  const applied = entries.filter((e) => e.status === 'applied');
  const next = inspection?.plan.toRun[0];
  const base = {
    name: target.name,
    applied: inspection ? applied.length : null,
    pending: inspection ? inspection.plan.toRun.length : null,
    unit: next?.unit.id ?? applied[applied.length - 1]?.unit.id ?? null,
    ran: done?.ran ?? [],
    ...(done?.checks ? { checks: done.checks } : {}),
  };
  if (failure === undefined) {
    const status: TargetStatus = inspection?.active ? 'running' : inspection?.died ? 'died' : next ? 'pending' : 'up-to-date';
    return { ...base, status, error: null, exitCode: ExitCode.ok };
  }
  const error = failureOf(failure);
  if (error.exitCode === ExitCode.interrupted && stoppedByFleet) return { ...base, status: 'stopped', error: null, exitCode: ExitCode.ok };
  const checks = (failure as { checks?: { failed: number; total: number } }).checks;
  return { ...base, ...(checks ? { checks } : {}), status: statusOf(error), error, exitCode: error.exitCode };
}

function statusOf(error: { code: string; exitCode: number }): TargetStatus {
  if (error.code === 'connection-failed') return 'unreachable';
  const byExit: Record<number, TargetStatus> = { 1: 'failed', 2: 'refused', 3: 'violations', 4: 'locked', 5: 'drift', 130: 'interrupted' };
  return byExit[error.exitCode] ?? 'failed';
}

/** The error of a target's row; a bug on one target is that target's error (code `bug`, exit 1), not the end of the fleet. */
function failureOf(error: unknown): NonNullable<FleetTargetResult['error']> {
  if (isTenantifyError(error))
    return { code: error.code, message: redact(error.message), exitCode: error.exitCode, hint: error.hint ?? null };
  const message = error instanceof Error ? error.message : String(error);
  return {
    code: 'bug',
    message: redact(message),
    exitCode: ExitCode.unitFailed,
    hint: 'an unexpected error: this is a bug in tenantify, please report it',
  };
}

function skipped(target: Target, held: Held): FleetTargetResult {
  return {
    name: target.name,
    status: 'skipped',
    applied: null,
    pending: null,
    unit: null,
    error: null,
    exitCode: ExitCode.ok,
    ran: [],
    held,
  };
}

/** `--targets FILE`: the targets file, read and parsed (a bad line: exit 2 naming the file and line). */
export async function targetsFromFile(file: string): Promise<Target[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read the targets file ${file}: ${(error as Error).message}`, {
      code: 'targets-not-found',
      hint: 'pass --targets with a file of `name postgres://...` lines',
    });
  }
  // Its passwords are masked by value wherever they appear from now on (a server's message, a unit's error), as -d's are.
  for (const word of text.split(/\s+/)) if (word.includes('://')) rememberUrlSecrets(word);
  return parseTargets(text, file);
}

/** `--targets-query SQL` on `-d`: rows of `name, url` (read-only). */
export async function targetsFromQuery(url: string | undefined, query: string): Promise<Target[]> {
  return withSession(url, 'targets query', async (session) => {
    await session.client.query('BEGIN READ ONLY');
    try {
      const { rows } = await session.client.query<Record<string, unknown>>(query);
      for (const row of rows) rememberUrlSecrets(String(row['url'] ?? ''));
      return targetsFromRows(rows);
    } catch (error) {
      if (isTenantifyError(error)) throw error;
      throw new UsageError(`--targets-query failed: ${(error as Error).message}`, {
        code: 'targets-query-failed',
        hint: 'the query runs read-only on -d and returns `name, url` rows',
      });
    } finally {
      await session.client.query('ROLLBACK').catch(() => {});
    }
  });
}

const silentReporter: Reporter = {
  unitStarted: () => {},
  unitProgress: () => {},
  unitDone: () => {},
  unitFailed: () => {},
  note: () => {},
};
const silentRevertReporter: RevertReporter = { revertStarted: () => {}, revertDone: () => {}, revertFailed: () => {}, note: () => {} };
