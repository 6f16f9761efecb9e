/** rollback(): the programmatic API behind `tenantify rollback`. */
import { ensureTriggersStayOff, planTriggers, triggersOffScripts } from '../exec/app-triggers.js';
import { connect, type Session } from '../db/connection.js';
import { Ledger, type LedgerUnit } from '../db/ledger.js';
import { withAdvisoryLock } from '../db/lock.js';
import { DriftError, UsageError, isTenantifyError } from '../errors.js';
import { Interrupt } from '../exec/interrupt.js';
import type { BatchSettings } from '../exec/context.js';
import { endRunNow } from './end-run.js';
import { connectionLost, isConnectionLost } from '../exec/failure-report.js';
import { notesOnly, restorableSnapshot, revertFromSnapshots, revertUnits, type RevertReport, type RevertReporter } from '../exec/revert.js';
import { planRollback, planRun, type Plan, type RollbackEntry, type RollbackPlan } from '../plan/planner.js';
import type { Unit } from '../plan/types.js';
import { batchSettings, ensureNoDrift, outcomeOf } from './apply.js';
import { loadProject } from './project.js';

export interface RollbackOptions {
  dir: string;
  url: string | undefined;
  steps?: number | undefined;
  to?: string | undefined;
  /** Every applied unit. Without it, --steps or --to, one unit: the newest. */
  all?: boolean | undefined;
  reporter: RevertReporter;
  /**
   * Asked once the plan is known and found revertible, before anything is written; false
   * leaves everything as it was. Throw to refuse (no terminal to ask on).
   */
  confirm: (entries: RollbackEntry[], database: string) => Promise<boolean>;
  /** Restore each unit's tables from its snapshot (units without one use their rollback file). */
  fromSnapshot?: boolean;
  /** Install SIGINT/SIGTERM handlers for the run (the CLI does). */
  handleSignals?: boolean;
  /** Stops the run at the next safe point once aborted (a fleet's SIGINT; see Interrupt.follow). */
  stop?: AbortSignal | undefined;
}

export interface RollbackResult {
  runId: number | undefined;
  database: string;
  /** What was to be reverted, newest first. */
  planned: RollbackEntry[];
  units: RevertReport[];
  /** The confirmation was declined: nothing was done. */
  declined: boolean;
}

export async function rollback(options: RollbackOptions): Promise<RollbackResult> {
  const project = await loadProject(options.dir);
  const session = await connect(options.url, 'rollback');
  const ledger = new Ledger(session.db, project.config.ledgerSchema);
  const interrupt = new Interrupt((text) => options.reporter.note(text));
  const result: RollbackResult = { runId: undefined, database: session.description, planned: [], units: [], declined: false };
  // A second signal ends the run's sessions and records the run interrupted (a revert leaves no unit `running`).
  interrupt.onForce((signal) => endRunNow(options.url, ledger.schema, result.runId, signal, (text) => options.reporter.note(text)));
  if (options.handleSignals) interrupt.install();
  interrupt.follow(options.stop);
  try {
    return await withAdvisoryLock(session, ledger, async () => {
      // No ledger: nothing was ever applied here, and a rollback must not create one.
      if ((await ledger.exists()) === undefined) return result;
      await ledger.ensure();
      const state = await ledger.read();
      const plan = rollbackPlan(project.units, state.units, options);
      ensureNoDriftIn(planRun(project.units, state.units), plan.toRevert);
      ensureRevertible(
        options.fromSnapshot
          ? { ...plan, toRevert: plan.toRevert.map((e) => (restorableSnapshot(e) ? { ...e, problem: undefined } : e)) }
          : plan,
      );
      result.planned = plan.toRevert;
      if (plan.toRevert.length === 0) return result;
      if (!options.fromSnapshot)
        await ensureTriggersStayOff(
          session,
          triggersOffScripts(
            plan.toRevert.map((e) => e.unit),
            'rollback',
          ),
          () => planTriggers(project.units),
        );
      if (!(await options.confirm(plan.toRevert, session.description))) return { ...result, declined: true };
      await revertRecorded(session, ledger, interrupt, options, plan.toRevert, result, batchSettings(project.config.batch));
      return result;
    });
  } catch (error) {
    if (interrupt.leaving) await interrupt.leaving;
    throw !isTenantifyError(error) && isConnectionLost(error, session) ? connectionLost(error, undefined) : error;
  } finally {
    interrupt.uninstall();
    await session.close();
  }
}

/** The run in the ledger around the reverts: started (`result.runId`), dead runs closed, finished with its outcome. */
async function revertRecorded(
  session: Session,
  ledger: Ledger,
  interrupt: Interrupt,
  options: RollbackOptions,
  entries: RollbackEntry[],
  result: RollbackResult,
  batching: BatchSettings,
): Promise<void> {
  const runId = await ledger.startRun(options.fromSnapshot ? 'rollback --from-snapshot' : 'rollback', {
    steps: options.steps ?? null,
    to: options.to ?? null,
    all: Boolean(options.all),
    fromSnapshot: Boolean(options.fromSnapshot),
  });
  result.runId = runId;
  for (const run of await ledger.closeDeadRuns(runId)) {
    options.reporter.note(
      `run ${run.id} (${run.command} by ${run.dbUser} on ${run.clientHost}, started ${run.startedAt.toISOString()}) died without finishing; recorded as died`,
    );
    await ledger.event(runId, null, 'dead_run_closed', { run: run.id });
  }
  const ctx = { session, ledger, runId, dryRun: false, interrupt, reporter: notesOnly(options.reporter), snapshots: undefined, batching };
  try {
    await (options.fromSnapshot ? revertFromSnapshots : revertUnits)(ctx, options.reporter, entries, result.units);
  } catch (error) {
    await ledger.finishRun(runId, outcomeOf(error), isTenantifyError(error) ? error.exitCode : 1).catch(() => {});
    throw error;
  }
  await ledger.finishRun(runId, 'done', 0);
}

/**
 * What to revert: --steps N, --to ID, --all, or by default the newest unit alone (a
 * rollback of everything is asked for by name, never the result of a forgotten option).
 */
export function rollbackPlan(units: Unit[], rows: LedgerUnit[], options: Pick<RollbackOptions, 'steps' | 'to' | 'all'>): RollbackPlan {
  const chosen = checkRollbackOptions(options);
  const plan = planRollback(units, rows, { steps: options.steps, to: options.to });
  if (chosen === 1) return plan;
  return { toRevert: plan.toRevert.slice(0, 1), kept: [...plan.toRevert.slice(1), ...plan.kept] };
}

/** How many of --steps, --to and --all were given; more than one is a usage error. */
export function checkRollbackOptions(options: Pick<RollbackOptions, 'steps' | 'to' | 'all'>): number {
  const chosen = [options.steps !== undefined, options.to !== undefined, Boolean(options.all)].filter(Boolean).length;
  if (chosen > 1)
    throw new UsageError('pass one of --steps, --to and --all', {
      code: 'rollback-target-conflict',
      hint: 'bare `tenantify rollback` reverts the newest applied unit; --steps N that many; --to ID down to that unit; --all every one',
    });
  return chosen;
}

/**
 * Drift matters for the units a rollback reverts (their rollback must match what ran), and
 * for applied units whose files are gone and that came after them (they would be skipped);
 * an earlier unit's edited file does not block reverting later ones.
 */
function ensureNoDriftIn(plan: Plan, toRevert: RollbackEntry[]): void {
  if (toRevert.length === 0) return;
  const ids = new Set(toRevert.map((e) => e.unit.id));
  const at = (row: LedgerUnit): number => (row.appliedAt ?? row.updatedAt).getTime();
  const oldest = Math.min(...toRevert.map((e) => at(e.ledger)));
  ensureNoDrift({
    ...plan,
    drifted: plan.drifted.filter((e) => ids.has(e.unit.id)),
    missing: plan.missing.filter((row) => at(row) >= oldest),
  });
}

/** Every unit to revert needs a usable rollback file, and one interrupted attempt must still match its file: checked before anything runs. */
export function ensureRevertible(plan: RollbackPlan): void {
  const problems = plan.toRevert.filter((e) => e.problem);
  if (problems.length > 0) {
    const names = problems.map((e) => e.unit.id);
    throw new UsageError(
      `cannot roll back: ${names.length === 1 ? `unit ${names[0]} has` : `units ${names.join(', ')} have`} no usable rollback file`,
      {
        code: 'rollback-file-missing',
        hint: 'write the missing rollbacks (a rollback carries the file name of the unit it reverts), or roll back fewer units with --steps or --to; nothing was touched',
        details: problems.map((e) => `${e.unit.id}: ${e.problem}`),
      },
    );
  }
  const drifted = plan.toRevert.filter((e) => e.driftReason);
  if (drifted.length > 0) {
    throw new DriftError(`drift: the rollback of ${drifted.map((e) => e.unit.id).join(', ')} changed after it was partly run`, {
      code: 'rollback-drift',
      details: drifted.map((e) => `${e.unit.rollback?.file}: ${e.driftReason}`),
      hint: 'restore the rollback file as it was when it ran (git shows it) so the run can resume after the statements already done; nothing was run',
    });
  }
}
