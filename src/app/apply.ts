/** apply(): the programmatic API behind `tenantify apply`. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { connect } from '../db/connection.js';
import { Ledger } from '../db/ledger.js';
import { takeRunLock } from '../db/lock.js';
import { DriftError, isTenantifyError } from '../errors.js';
import { executePlan, type UnitReport } from '../exec/executor.js';
import type { BatchSettings, ExecContext, Reporter } from '../exec/context.js';
import { Interrupt } from '../exec/interrupt.js';
import { endRunNow } from './end-run.js';
import { defaultBatchSettings, defaultParallel } from '../exec/batched.js';
import { defaultThrottle, type ThrottleSettings } from '../exec/throttle.js';
import type { Config } from '../plan/config.js';
import { connectionLost, isConnectionLost } from '../exec/failure-report.js';
import { planRun, type Plan } from '../plan/planner.js';
import { loadProjectWhile, type Project } from './project.js';
import { autoRollback, ensureAutoRollbackPossible, warrantsAutoRollback } from './auto-rollback.js';
import { checkGuardsAfter, guardBaseline } from './guards.js';
import type { RevertReporter } from '../exec/revert.js';
import { SnapshotTaker } from '../db/snapshot-take.js';
import { snapshotDirectory } from '../db/snapshot.js';
import { ensureLintAllows } from '../lint/gate.js';
import { ensureTriggersStayOff, planTriggers, triggersOffScripts } from '../exec/app-triggers.js';

export interface ApplyOptions {
  dir: string;
  url: string | undefined;
  to?: string | undefined;
  dryRun?: boolean;
  /** Workers for batched backfills (else the config's batch.parallel, else defaultParallel: one with the throttle on). */
  parallel?: number | undefined;
  /** Take no pg_dump snapshots (recorded in the ledger). */
  noSnapshot?: boolean;
  /** Where the snapshots go instead of the config's snapshotDir (a fleet gives each target its own: run numbers repeat across databases). */
  snapshotDir?: string | undefined;
  reporter: Reporter;
  /** Install SIGINT/SIGTERM handlers for the run (the CLI does). */
  handleSignals?: boolean;
  /** Stops the run at the next safe point once aborted (a fleet's SIGINT, or its stop on another target's error; see Interrupt.follow). */
  stop?: AbortSignal | undefined;
  /** When a unit, precheck or verify fails, revert what this run applied. */
  autoRollback?: boolean;
  /** How reverts are shown (--auto-rollback); by default as notes of `reporter`. */
  revertReporter?: RevertReporter;
  /** Trace the locks each unit takes (units then run one at a time, statement by statement); a dry run traces unless false. */
  traceLocks?: boolean;
  /** A warning for the operator (snapshots a git repository would take in); by default a note of `reporter`. */
  warn?: (text: string) => void;
}

export interface ApplyResult {
  runId: number | undefined;
  dryRun: boolean;
  plan: Plan;
  units: UnitReport[];
  database: string;
}

export async function apply(options: ApplyOptions): Promise<ApplyResult> {
  const dryRun = Boolean(options.dryRun);
  const purpose = dryRun ? 'apply --dry-run' : 'apply';
  // Connecting, the lock and the ledger's read are mostly the server's work: they go on while
  // the plan's files are read. A bad plan still refuses the run before any of them is used.
  const { project, started } = await loadProjectWhile(
    options.dir,
    async (config, signal) => {
      const session = await connect(options.url, purpose, signal);
      const ledger = new Ledger(session.db, config.ledgerSchema);
      try {
        const unlock = await takeRunLock(session, ledger);
        return { session, ledger, unlock, state: await ledger.read() };
      } catch (error) {
        await session.close();
        throw error;
      }
    },
    ({ session }) => session.close(),
  );
  const { session, ledger, unlock, state } = started;
  const interrupt = new Interrupt((text) => options.reporter.note(text));
  const reports: UnitReport[] = [];
  // The run as the ledger knows it, for a second signal to record (none in a dry run: its transaction records nothing).
  let recordedRun: number | undefined;
  interrupt.onForce((signal) => endRunNow(options.url, ledger.schema, recordedRun, signal, (text) => options.reporter.note(text)));
  if (options.handleSignals) interrupt.install();
  interrupt.follow(options.stop);
  try {
    // A dry run writes nothing that outlives it: even the ledger is created inside its transaction.
    if (dryRun) await session.client.query('BEGIN');
    try {
      // Everything that can refuse the run does so before the ledger is even created.
      const plan = planRun(project.units, state.units, { to: options.to });
      ensureNoDrift(plan);
      const autoRollbackOn = Boolean(options.autoRollback) && !dryRun;
      if (autoRollbackOn) ensureAutoRollbackPossible(plan);
      await ensureLintAllows(
        project,
        plan.toRun.map((e) => e.unit),
        session,
        (text) => options.reporter.note(text),
      );
      await ensureTriggersStayOff(
        session,
        triggersOffScripts(
          plan.toRun.map((e) => e.unit),
          'apply',
        ),
        () => planTriggers(project.units),
      );
      const snapshotDir = options.snapshotDir ?? snapshotDirectory(project.directory, project.config.snapshotDir);
      const snapshots =
        dryRun || options.noSnapshot
          ? undefined
          : new SnapshotTaker(session, {
              directory: snapshotDir,
              parallelAbove: project.config.snapshotParallelAboveMb * 1024 * 1024,
              ledgerSchema: project.config.ledgerSchema,
            });
      await snapshots?.preflight(plan.toRun.map((e) => e.unit));
      if (snapshots && plan.toRun.length > 0) {
        const exposed = snapshotsNotIgnored(snapshotDir);
        if (exposed) (options.warn ?? options.reporter.note)(exposed);
      }
      await ledger.ensure(state);
      const runId = await ledger.startRun(purpose, {
        to: options.to ?? null,
        dryRun,
        snapshots: !options.noSnapshot,
        autoRollback: autoRollbackOn,
      });
      if (!dryRun) recordedRun = runId;
      // A ledger created just now has no runs to have died.
      for (const run of state.exists ? await ledger.closeDeadRuns(runId) : []) {
        options.reporter.note(
          `run ${run.id} (${run.command} by ${run.dbUser} on ${run.clientHost}, started ${run.startedAt.toISOString()}) died without finishing; resuming its work`,
        );
        await ledger.event(runId, null, 'dead_run_closed', { run: run.id });
      }
      const batching = batchSettings(project.config.batch, options.parallel);
      const ctx = {
        session,
        ledger,
        runId,
        dryRun,
        interrupt,
        reporter: options.reporter,
        snapshots,
        batching,
        traceLocks: options.traceLocks ?? dryRun,
      };
      try {
        await executeWithSafeguards(ctx, project, plan, reports, options, autoRollbackOn);
      } catch (error) {
        // A second signal ended the run's sessions and tells the ledger itself; the process leaves from there.
        if (interrupt.leaving) await interrupt.leaving;
        if (!dryRun) await ledger.finishRun(runId, outcomeOf(error), isTenantifyError(error) ? error.exitCode : 1).catch(() => {});
        throw error;
      }
      if (!dryRun) await ledger.finishRun(runId, 'done', 0);
      return { runId: dryRun ? undefined : runId, dryRun, plan, units: reports, database: session.description };
    } finally {
      if (dryRun) await session.client.query('ROLLBACK').catch(() => {});
    }
  } catch (error) {
    if (interrupt.leaving) await interrupt.leaving;
    // Lost before or between units (the ledger's creation, a snapshot, a guard): no unit to name.
    throw !isTenantifyError(error) && isConnectionLost(error, session) ? connectionLost(error, undefined) : error;
  } finally {
    interrupt.uninstall();
    await unlock();
    await session.close();
  }
}

export function ensureNoDrift(plan: Plan): void {
  if (plan.drifted.length === 0 && plan.missing.length === 0) return;
  const details = [
    ...plan.drifted.map((e) => `${e.unit.file}: ${e.driftReason}`),
    ...plan.missing.map((row) => `${row.file}: applied, but the file is gone from the plan`),
  ];
  const names = [...plan.drifted.map((e) => e.unit.id), ...plan.missing.map((row) => row.id)];
  throw new DriftError(
    `drift: ${names.length === 1 ? `applied unit ${names[0]} has` : `applied units ${names.join(', ')} have`} changed since ${names.length === 1 ? 'it was' : 'they were'} applied`,
    {
      code: 'drift',
      details,
      hint: 'restore the applied file as it was (git shows it), and put the change in a new unit; nothing was run',
    },
  );
}

/**
 * Snapshots hold the customer's rows: inside a git work tree they must be ignored, or one
 * `git add .` publishes them. A warning when git says they are not; nothing when the
 * directory is outside any work tree or git is not installed.
 */
export function snapshotsNotIgnored(directory: string): string | undefined {
  let existing = directory;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  // Outside any repository git has nothing to say: no .git above, no git started (a run's
  // child process less, ~20 ms of CPU).
  if (!process.env['GIT_DIR'] && !underGitRepository(existing)) return undefined;
  const check = spawnSync('git', ['-C', existing, 'check-ignore', '-q', directory], { stdio: 'ignore', timeout: 5000 });
  // 0: ignored; 1: inside a work tree and not ignored; 128 or no git at all: nothing to say.
  if (check.status !== 1) return undefined;
  const top =
    spawnSync('git', ['-C', existing, 'rev-parse', '--show-toplevel'], { encoding: 'utf8', timeout: 5000 }).stdout?.trim() || existing;
  const shown = relative(top, directory) || '.';
  return `warning: snapshots hold the tables' data and go to ${directory}, inside the git work tree ${top} and not ignored by git: add \`${shown}/\` to its .gitignore (tenantify init writes one), or set snapshotDir outside it`;
}

/** A `.git` (a directory, or a worktree's file) in the directory or above it. */
function underGitRepository(directory: string): boolean {
  for (let dir = resolve(directory); ; dir = dirname(dir)) {
    if (existsSync(join(dir, '.git'))) return true;
    if (dirname(dir) === dir) return false;
  }
}

/** The ledger's word for how a run ended, from the error that ended it. */
export function outcomeOf(error: unknown): string {
  if (!isTenantifyError(error)) return 'error';
  return { 1: 'failed', 2: 'refused', 3: 'violations', 4: 'locked', 5: 'drift', 130: 'interrupted' }[error.exitCode as 1] ?? 'failed';
}

/** The plan's units, watched by the configured guards, and undone by --auto-rollback when one fails. */
async function executeWithSafeguards(
  ctx: ExecContext,
  project: Project,
  plan: Plan,
  reports: UnitReport[],
  options: ApplyOptions,
  autoRollbackOn: boolean,
): Promise<void> {
  const revertReporter = options.revertReporter ?? revertNotes(options.reporter);
  try {
    const { guards } = project.config;
    const baseline = guards.length > 0 && !ctx.dryRun ? await guardBaseline(ctx, guards) : undefined;
    await executePlan(
      ctx,
      plan,
      reports,
      baseline ? { afterUnit: checkGuardsAfter(ctx, guards, baseline, project.units, revertReporter) } : {},
    );
  } catch (error) {
    throw autoRollbackOn && warrantsAutoRollback(error) ? await autoRollback(ctx, project.units, revertReporter, error) : error;
  }
}

function revertNotes(reporter: Reporter): RevertReporter {
  return {
    revertStarted: (entry) => reporter.note(`${entry.unit.id}: reverting`),
    revertDone: (unit, o) => reporter.note(`${unit.id}: rolled back in ${o.durationMs} ms`),
    revertFailed: (unit, message) => reporter.note(`${unit.id}: rollback failed: ${message.split('\n')[0]}`),
    note: (text) => reporter.note(text),
  };
}

/** The plan's `batch` settings over the executor's defaults (apply, and a rollback's batched files); `parallel`: --parallel. */
export function batchSettings(batch: Config['batch'], parallel?: number): BatchSettings {
  const throttle = throttleSettings(batch.throttle);
  return {
    targetMs: batch.targetDuration ?? defaultBatchSettings.targetMs,
    pauseMs: batch.pause ?? defaultBatchSettings.pauseMs,
    maxReplicationLagMs: batch.maxReplicationLag ?? defaultBatchSettings.maxReplicationLagMs,
    parallel: parallel ?? batch.parallel ?? defaultParallel(throttle.enabled),
    throttle,
  };
}

/** The plan's `batch.throttle` over the throttle's defaults. */
export function throttleSettings(configured: Config['batch']['throttle']): ThrottleSettings {
  if (configured === 'off') return { ...defaultThrottle, enabled: false };
  return {
    enabled: true,
    probeLimitMs: configured?.probeLatency ?? defaultThrottle.probeLimitMs,
    duty: configured?.duty ?? defaultThrottle.duty,
    maxPauseMs: configured?.maxPause ?? defaultThrottle.maxPauseMs,
  };
}
