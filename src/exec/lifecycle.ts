/**
 * What happens to a unit, written once for every kind and both directions (sqitch's
 * deploy_change):
 *
 *   start → precheck → snapshot → begin → body → verify → record → commit
 *   on failure: roll back → record why → the error the DBA reads
 *
 * Applying runs the unit's file and reverting its rollback file, through the same steps:
 * the direction (applying, reverting below) says what the ledger and the reporter are told
 * at each step; the runner (kinds.ts picks it: transactional.ts, statements.ts, batched.ts,
 * typescript.ts) says how the body runs. A unit whose body commits as it goes (statements
 * outside a transaction, batches) runs it before begin, then begin → verify → record →
 * commit. A SQL unit's transaction travels as one message when it can (transport.ts).
 */
import { toLedgerError, type CheckResult } from './failure.js';
import { applyFailure, connectionLost, isCancel, isConnectionLost, revertFailure } from './failure-report.js';
import { runnerFor } from './kinds.js';
import { appliedTransition, rolledBackTransition, snapshotsOff, startTransition } from './records.js';
import { cancellable, check, inTransaction, retrying } from './steps.js';
import { inOneMessage, travelsAsMessage } from './transport.js';
import { tracedTransaction, type LockHeld } from './lock-trace.js';
import { Interruption } from './interrupt.js';
import type { Direction, ExecContext, RevertReporter, UnitOutcome, UnitReport, Work } from './context.js';
import type { PlanEntry, RollbackEntry } from '../plan/planner.js';
import type { ConnectionLostError } from '../errors.js';

/** Runs one unit's work through its steps; throws the failure (recorded) as a TenantifyError. */
export async function runUnit(ctx: ExecContext, work: Work): Promise<UnitOutcome> {
  const { script, direction } = work;
  const startedAt = performance.now();
  await direction.start(ctx, work);
  try {
    // A signal cancels whatever statement is in flight, in every step; between steps, the unit goes no further.
    const { prechecks, checks, note, locks } = await cancellable(ctx, async () => {
      ctx.interrupt.throwIfRequested();
      const prechecks = await check(ctx, script, 'precheck');
      ctx.interrupt.throwIfRequested();
      await direction.beforeBody(ctx, work);
      ctx.interrupt.throwIfRequested();
      return { prechecks, ...(await runBody(ctx, work, startedAt)) };
    });
    const outcome = {
      durationMs: Math.round(performance.now() - startedAt),
      checks: [...prechecks, ...checks],
      ...(note ? { note } : {}),
      ...(locks ? { locks } : {}),
    };
    direction.done(ctx, work, outcome);
    return outcome;
  } catch (error) {
    throw await failed(ctx, work, error);
  }
}

/** The error the caller gets, recorded; a lost connection cannot be recorded, and says so. */
async function failed(ctx: ExecContext, work: Work, error: unknown): Promise<unknown> {
  const lost = (e: unknown): ConnectionLostError =>
    connectionLost(e, { unitId: work.unit.id, direction: work.direction.name, partial: !runnerFor(work.script).inTransaction });
  if (isConnectionLost(error, ctx.session) && !stoppedBy(ctx, error)) return lost(error);
  return work.direction.fail(ctx, work, error).catch((e: unknown) => {
    throw isConnectionLost(e, ctx.session) ? lost(e) : e;
  });
}

async function runBody(
  ctx: ExecContext,
  work: Work,
  startedAt: number,
): Promise<{ checks: CheckResult[]; note?: string | undefined; locks?: LockHeld[] }> {
  const { script, direction } = work;
  const runner = runnerFor(script);
  if (!runner.inTransaction) {
    const note = await runner.body(ctx, work);
    return { note, checks: await inTransaction(ctx, script.options, () => verifyAndRecord(ctx, work, startedAt)) };
  }
  const recordText = direction.recordText;
  if (recordText && !work.messageFailed && travelsAsMessage(ctx, script)) {
    const checks = await inOneMessage(ctx, work.unit.id, script, (results) => recordText(ctx, work, results));
    if (checks) return { checks };
  }
  // Retried whole after a lock timeout; a first SIGINT cancels the statement in flight.
  return retrying(ctx, script, () =>
    cancellable(ctx, () =>
      ctx.traceLocks
        ? tracedTransaction(ctx, work, runner, () => verifyAndRecord(ctx, work, startedAt))
        : inTransaction(ctx, script.options, async () => {
            const note = await runner.body(ctx, work);
            return { note, checks: await verifyAndRecord(ctx, work, startedAt) };
          }),
    ),
  );
}

/** Inside the unit's last transaction: the verify sections must pass, then the ledger records the unit done. */
async function verifyAndRecord(ctx: ExecContext, work: Work, startedAt: number): Promise<CheckResult[]> {
  const checks = await check(ctx, work.script, 'verify');
  await work.direction.record(ctx, work, checks, startedAt);
  return checks;
}

/** The signal that stopped the work, when the failure is that stop (a cancelled statement, a stop between statements or batches). */
function stoppedBy(ctx: ExecContext, error: unknown): string | undefined {
  return ctx.interrupt.requested !== undefined && isCancel(error) ? ctx.interrupt.requested : undefined;
}

/**
 * Applies one unit. `startRecorded`, `messageFailed`: a message that carried the unit
 * recorded its start (not again) and failed (the unit runs step by step).
 */
export async function applyUnit(
  ctx: ExecContext,
  entry: PlanEntry,
  { startRecorded = false, messageFailed = false } = {},
): Promise<UnitReport> {
  const { unit } = entry;
  const work: Work = {
    unit,
    script: unit,
    resume: entry.resume,
    progress: entry.ledger?.progress,
    startRecorded,
    messageFailed,
    direction: applying(entry),
  };
  return { id: unit.id, outcome: 'applied', ...(await runUnit(ctx, work)) };
}

/** Reverts one unit with its rollback file. */
export async function revertUnit(ctx: ExecContext, reporter: RevertReporter, entry: RollbackEntry): Promise<UnitOutcome> {
  const { unit } = entry;
  if (!unit.rollback) throw new Error(`${unit.id} has no rollback file; the caller should have refused it`);
  const work: Work = {
    unit,
    script: unit.rollback,
    resume: entry.resume,
    progress: entry.ledger.progress,
    startRecorded: false,
    messageFailed: false,
    direction: reverting(entry, reporter),
  };
  return runUnit(ctx, work);
}

/** Applying: the unit's state in the ledger goes running → applied (or failed), with a snapshot before its body. Nothing is recorded in a dry run. */
function applying(entry: PlanEntry): Direction {
  return {
    name: 'apply',
    async start(ctx, work) {
      ctx.reporter.unitStarted(entry);
      if (!ctx.dryRun && !work.startRecorded) await ctx.ledger.transition(startTransition(ctx, entry));
    },
    async beforeBody(ctx, work) {
      if (!work.startRecorded) await snapshotBefore(ctx, entry);
    },
    async statementDone(ctx, work, done, statement) {
      await ctx.ledger.saveProgress(
        ctx.runId,
        work.unit.id,
        { statements: done },
        { name: 'statement_done', detail: { statement: done.length, line: statement.line } },
      );
    },
    async record(ctx, work, checks, startedAt) {
      if (!ctx.dryRun) await ctx.ledger.transition(appliedTransition(ctx, work.unit, checks, Math.round(performance.now() - startedAt)));
    },
    recordText: (ctx, work, checks) => ctx.ledger.transitionText(appliedTransition(ctx, work.unit, checks, 'since-start')),
    done(ctx, work, outcome) {
      ctx.reporter.unitDone(work.unit, outcome);
    },
    async fail(ctx, work, error) {
      const signal = stoppedBy(ctx, error);
      if (!ctx.dryRun) {
        const ledgerError = signal ? { message: `interrupted by ${signal}`, code: 'interrupted' } : toLedgerError(error);
        await ctx.ledger.transition({
          runId: ctx.runId,
          unit: work.unit,
          status: 'failed',
          event: signal ? 'interrupted' : 'failed',
          error: ledgerError,
        });
      }
      const failure = applyFailure(work.unit, error, signal, ctx.dryRun);
      ctx.reporter.unitFailed(work.unit, failure.message);
      return failure;
    },
  };
}

/** pg_dump of what the unit will write, before it runs; a resumed unit keeps the snapshot of its first attempt. */
async function snapshotBefore(ctx: ExecContext, entry: PlanEntry): Promise<void> {
  if (ctx.dryRun) return;
  const { unit } = entry;
  if (!ctx.snapshots) {
    await ctx.ledger.saveSnapshot(ctx.runId, unit.id, null, 'snapshot_skipped', snapshotsOff);
    return;
  }
  if (entry.resume.kind !== 'start' && entry.ledger?.snapshot) return;
  const manifest = await ctx.snapshots.take(unit, ctx.runId, ctx.interrupt.signal).catch((error: unknown) => {
    // pg_dump stopped by the signal: the unit stops before its body, as interrupted.
    throw ctx.interrupt.requested ? new Interruption(ctx.interrupt.requested) : error;
  });
  if (manifest) {
    await ctx.ledger.saveSnapshot(ctx.runId, unit.id, { ...manifest }, 'snapshot_taken');
    ctx.reporter.note(
      `${unit.id}: snapshot of ${manifest.scope === 'tables' ? manifest.tables.join(', ') : `the ${manifest.scope} database`} (${manifest.bytes} bytes, ${manifest.durationMs} ms)`,
    );
  }
}

/**
 * Reverting: the unit's state moves to rolled_back in the transaction of the rollback's
 * verify; until then (and on failure) it keeps its state, and the history says what
 * happened (rollback_started, rollback_statement_done, rollback_failed).
 */
function reverting(entry: RollbackEntry, reporter: RevertReporter): Direction {
  const file = entry.unit.rollback?.file;
  return {
    name: 'revert',
    async start(ctx, work) {
      reporter.revertStarted(entry);
      await ctx.ledger.event(ctx.runId, work.unit.id, 'rollback_started', { file, status: entry.ledger.status, resume: entry.resume });
    },
    async beforeBody() {},
    async statementDone(ctx, work, done, statement) {
      await ctx.ledger.saveProgress(
        ctx.runId,
        work.unit.id,
        { ...entry.ledger.progress, revertStatements: done },
        {
          name: 'rollback_statement_done',
          detail: { file, statement: done.length, line: statement.line },
        },
      );
    },
    async record(ctx, _work, checks, startedAt) {
      await ctx.ledger.transition(rolledBackTransition(ctx, entry, checks, Math.round(performance.now() - startedAt)));
    },
    done(_ctx, work, { durationMs, checks }) {
      reporter.revertDone(work.unit, { durationMs, checks });
    },
    async fail(ctx, work, error) {
      const signal = stoppedBy(ctx, error);
      const ledgerError = signal ? { message: `interrupted by ${signal}`, code: 'interrupted' } : toLedgerError(error);
      await ctx.ledger.event(ctx.runId, work.unit.id, signal ? 'rollback_interrupted' : 'rollback_failed', {
        file,
        status: entry.ledger.status,
        error: ledgerError,
      });
      const failure = revertFailure(entry, work.script, error, signal);
      reporter.revertFailed(work.unit, failure.message);
      return failure;
    },
  };
}
