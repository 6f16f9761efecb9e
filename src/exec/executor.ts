/**
 * The per-unit sequence, written once: record the start, precheck, run the unit's kind
 * (body, verify and ledger in its transaction), and on failure roll back and record why.
 */
import { InterruptedError, UnitFailedError, ViolationsError, type TenantifyError } from '../errors.js';
import type { Plan, PlanEntry } from '../plan/planner.js';
import type { Unit } from '../plan/types.js';
import { runChecks } from './checks.js';
import { batchedRunner } from './batched.js';
import { ChecksFailed, StatementFailure, toLedgerError, type CheckResult } from './failure.js';
import { isCancel, statementDetails, violationDetails } from './failure-report.js';
import { statementsRunner } from './statements.js';
import { fitsOneMessage, isServerError, transactionalRunner, unitMessage } from './transactional.js';
import { cancellable } from './steps.js';
import type { DeferredStart, ExecContext, UnitRunner } from './context.js';
import { appliedResultName, type UnitTransition } from '../db/ledger.js';
import type pg from 'pg';
import { mayNeedSnapshot } from '../db/snapshot.js';

export interface UnitReport {
  id: string;
  outcome: 'applied' | 'failed' | 'interrupted' | 'not-run';
  durationMs: number;
  checks: CheckResult[];
  note?: string;
}

function runnerFor(unit: Unit): UnitRunner {
  if (unit.options.batch) return batchedRunner;
  if (!unit.options.transaction) return statementsRunner;
  return transactionalRunner;
}

export interface ExecHooks {
  /** After each unit is applied and committed (the run's guards); throwing fails the run there. */
  afterUnit?: (entry: PlanEntry) => Promise<void>;
}

/** Runs the plan's pending units in order. Throws the first failure as a TenantifyError. */
export async function executePlan(ctx: ExecContext, plan: Plan, reports: UnitReport[], hooks: ExecHooks = {}): Promise<void> {
  const trains = new TrainLength();
  const entries = plan.toRun;
  for (let i = 0; i < entries.length; ) {
    const entry = entries[i] as PlanEntry;
    if (ctx.interrupt.requested) throw interrupted(ctx.interrupt.requested, entry.unit.id);
    if (ctx.dryRun && !entry.unit.options.transaction) {
      ctx.reporter.note(`${entry.unit.id}: not run in a dry run (it runs outside a transaction)`);
      reports.push({ id: entry.unit.id, outcome: 'not-run', durationMs: 0, checks: [] });
      i++;
      continue;
    }
    const startedAt = performance.now();
    // The guards look at the database after every unit: a unit at a time for them.
    const train = hooks.afterUnit ? [] : trainFrom(ctx, entries, i, trains.length);
    if (train.length > 1) {
      const done = await applyTrain(ctx, train, reports);
      trains.after(done === train.length ? performance.now() - startedAt : undefined);
      i += done;
      continue;
    }
    reports.push(await applyUnit(ctx, entry));
    trains.after(performance.now() - startedAt);
    await hooks.afterUnit?.(entry);
    i++;
  }
}

/**
 * How many units the next message may carry. Quick units travel together (each still in
 * transactions of its own), which saves a round trip and the server's work of a message
 * per unit: the length doubles while messages come back within 100 ms, up to 32, and is
 * one again after a message slower than a second or a failure, so a slow unit is reported
 * as soon as it is done.
 */
class TrainLength {
  length = 1;

  after(elapsedMs: number | undefined): void {
    if (elapsedMs === undefined || elapsedMs > 1000) this.length = 1;
    else if (elapsedMs < 100) this.length = Math.min(this.length * 2, 32);
  }
}

/** Up to a message's worth of text. */
const trainTextBytes = 1024 * 1024;

/** The units from `from` on that can travel in one message: those whose start travels with them. */
function trainFrom(ctx: ExecContext, entries: PlanEntry[], from: number, length: number): PlanEntry[] {
  const train: PlanEntry[] = [];
  let bytes = 0;
  for (const entry of entries.slice(from, from + length)) {
    if (ctx.dryRun || !startCanTravelWithUnit(ctx, entry)) break;
    bytes += entry.unit.statements.reduce((n, s) => n + s.sql.length, 0);
    if (train.length > 0 && bytes > trainTextBytes) break;
    train.push(entry);
  }
  return train;
}

/**
 * Several units' one-unit messages sent as one text. The server runs them in order, each
 * unit's start and body committing in their own transactions as when sent alone, and skips
 * the rest of the text at the first error. Then the ledger says which units are applied;
 * the one that failed runs again on its own, which reports its error as it always does.
 * Returns how many units it is done with.
 */
async function applyTrain(ctx: ExecContext, train: PlanEntry[], reports: UnitReport[]): Promise<number> {
  const startedAt = performance.now();
  const messages = train.map((entry) => unitMessage(ctx, entry, deferredStart(ctx, entry)));
  const ids = train.map((entry) => entry.unit.id);
  const text = `/* tenantify: ${ids[0]} to ${ids[ids.length - 1]}, ${ids.length} units */ ${messages.map((m) => m.text).join('\n;\n')}`;
  ctx.reporter.unitStarted(train[0] as PlanEntry);
  let durations: (number | null | undefined)[];
  let failure: unknown;
  try {
    const results = (await cancellable(ctx, () => ctx.session.client.query(text))) as unknown as pg.QueryResult[];
    durations = results.filter((r) => r.fields[0]?.name === appliedResultName).map((r) => r.rows[0]?.[appliedResultName] as number | null);
  } catch (error) {
    failure = error;
    await ctx.session.client.query('ROLLBACK').catch(() => {});
    if (!isServerError(error) && !ctx.interrupt.requested) throw error;
    const applied = await ctx.ledger.appliedBy(ctx.runId, ids);
    durations = [];
    for (const id of ids) {
      if (!applied.has(id)) break;
      durations.push(applied.get(id));
    }
  }
  const share = Math.round((performance.now() - startedAt) / train.length);
  for (const [k, entry] of train.slice(0, failure ? durations.length : train.length).entries()) {
    const durationMs = durations[k] ?? share;
    const { checks } = messages[k] as { checks: CheckResult[] };
    if (k > 0) ctx.reporter.unitStarted(entry);
    ctx.reporter.unitDone(entry.unit, { durationMs, checks });
    reports.push({ id: entry.unit.id, outcome: 'applied', durationMs, checks });
  }
  if (!failure) return train.length;
  const done = durations.length;
  const failed = train[done] as PlanEntry;
  const started = await ctx.ledger.isRunningIn(ctx.runId, failed.unit.id);
  if (!started) return done;
  if (ctx.interrupt.requested) {
    if (done > 0) ctx.reporter.unitStarted(failed);
    const error = await recordFailure(ctx, failed.unit, failure);
    ctx.reporter.unitFailed(failed.unit, error.message);
    throw error;
  }
  reports.push(await applyUnit(ctx, failed, { startRecorded: true }));
  return done + 1;
}

/** One unit: its start, precheck, kind's runner; `startRecorded` when a message of several units committed its start already. */
export async function applyUnit(ctx: ExecContext, entry: PlanEntry, { startRecorded = false } = {}): Promise<UnitReport> {
  const { unit } = entry;
  const startedAt = performance.now();
  ctx.reporter.unitStarted(entry);
  const deferred = !ctx.dryRun && !startRecorded && startCanTravelWithUnit(ctx, entry) ? deferredStart(ctx, entry) : undefined;
  if (!ctx.dryRun && !deferred && !startRecorded) await ctx.ledger.transition(startTransition(ctx, entry));
  try {
    const prechecks = await runChecks(ctx.session.client, unit.prechecks, 'precheck', unit);
    if (prechecks.some((c) => !c.ok)) throw new ChecksFailed('precheck', prechecks);
    if (!deferred && !startRecorded) await snapshotBefore(ctx, entry);
    const outcome = await runnerFor(unit).run(ctx, entry, startedAt, deferred);
    const durationMs = Math.round(performance.now() - startedAt);
    const checks = [...prechecks, ...outcome.checks];
    ctx.reporter.unitDone(unit, { durationMs, checks, ...(outcome.note ? { note: outcome.note } : {}) });
    return { id: unit.id, outcome: 'applied', durationMs, checks, ...(outcome.note ? { note: outcome.note } : {}) };
  } catch (error) {
    const failure = await recordFailure(ctx, unit, error);
    ctx.reporter.unitFailed(unit, failure.message);
    throw failure;
  }
}

function startTransition(ctx: ExecContext, entry: PlanEntry): UnitTransition {
  const { unit } = entry;
  return {
    runId: ctx.runId,
    unit,
    status: 'running',
    event: entry.resume.kind === 'start' ? (entry.status === 'running' ? 'restarted' : 'started') : 'resumed',
    fresh: true,
    ...(entry.resume.kind === 'start' ? { progress: {} } : {}),
    detail: { file: unit.file, resume: entry.resume, previousStatus: entry.status },
  };
}

/**
 * A unit sent as one message, with no precheck and nothing to snapshot, needs no round trip
 * of its own to record its start: the start travels at the head of the unit's message.
 */
function startCanTravelWithUnit(ctx: ExecContext, entry: PlanEntry): boolean {
  const { unit } = entry;
  return runnerFor(unit) === transactionalRunner && fitsOneMessage(ctx, unit) && unit.prechecks.length === 0 && !(ctx.snapshots && mayNeedSnapshot(unit));
}

/** The start and what `snapshotBefore` would record (the skipped snapshot with --no-snapshot), as text. */
function deferredStart(ctx: ExecContext, entry: PlanEntry): DeferredStart {
  const { unit } = entry;
  const start = startTransition(ctx, entry);
  return {
    statements: [ctx.ledger.transitionText(start), ...(ctx.snapshots ? [] : [ctx.ledger.saveSnapshotText(ctx.runId, unit.id, null, 'snapshot_skipped', snapshotsOff)])],
    async settle() {
      if (await ctx.ledger.isRunningIn(ctx.runId, unit.id)) return;
      await ctx.ledger.transition(start);
      await snapshotBefore(ctx, entry);
    },
  };
}

const snapshotsOff = { reason: '--no-snapshot' };

/** pg_dump of what the unit will write, before it runs; a resumed unit keeps the snapshot of its first attempt. */
async function snapshotBefore(ctx: ExecContext, entry: PlanEntry): Promise<void> {
  if (ctx.dryRun) return;
  const { unit } = entry;
  if (!ctx.snapshots) {
    await ctx.ledger.saveSnapshot(ctx.runId, unit.id, null, 'snapshot_skipped', snapshotsOff);
    return;
  }
  if (entry.resume.kind !== 'start' && entry.ledger?.snapshot) return;
  const manifest = await ctx.snapshots.take(unit, ctx.runId);
  if (manifest) {
    await ctx.ledger.saveSnapshot(ctx.runId, unit.id, { ...manifest }, 'snapshot_taken');
    ctx.reporter.note(`${unit.id}: snapshot of ${manifest.scope === 'tables' ? manifest.tables.join(', ') : `the ${manifest.scope} database`} (${manifest.bytes} bytes, ${manifest.durationMs} ms)`);
  }
}

/** The ledger learns why; the caller gets an error that tells the DBA what to do. */
async function recordFailure(ctx: ExecContext, unit: Unit, error: unknown): Promise<TenantifyError> {
  const wasInterrupt = ctx.interrupt.requested !== undefined && isCancel(error);
  const ledgerError = wasInterrupt ? { message: `interrupted by ${ctx.interrupt.requested}`, code: 'interrupted' } : toLedgerError(error);
  if (!ctx.dryRun) {
    await ctx.ledger.transition({ runId: ctx.runId, unit, status: 'failed', event: wasInterrupt ? 'interrupted' : 'failed', error: ledgerError });
  }
  if (wasInterrupt) return interrupted(ctx.interrupt.requested as string, unit.id, !unit.options.transaction || Boolean(unit.options.batch));
  if (error instanceof ChecksFailed) return violations(unit, error);
  if (error instanceof StatementFailure) return statementFailed(unit, error);
  const message = (error as Error).message ?? String(error);
  return new UnitFailedError(`unit ${unit.id} failed: ${message}`, {
    hint: 'it was rolled back and the ledger records why; fix it and run `tenantify apply` again',
    cause: error,
  });
}

function interrupted(signal: string, unitId: string, partial = false): InterruptedError {
  return new InterruptedError(
    `interrupted by ${signal} at ${unitId}: ${partial ? 'the work in flight was finished or rolled back and its progress recorded' : 'its transaction was rolled back'}`,
    'run `tenantify apply` again to resume where it stopped',
  );
}

function statementFailed(unit: Unit, failure: StatementFailure): UnitFailedError {
  const { pgError } = failure;
  const details = statementDetails(failure);
  const partial = !unit.options.transaction
    ? 'it runs outside a transaction: the statements before this one stay done, and `tenantify apply` resumes at this one'
    : unit.options.batch
      ? 'the failed batch was rolled back; the batches before it stay committed and `tenantify apply` resumes after them'
      : 'it was rolled back whole';
  return new UnitFailedError(`unit ${unit.id} failed: ${pgError.message}`, {
    details,
    hint: `${partial}; the ledger records the error. Fix the unit and run \`tenantify apply\` again`,
  });
}

function violations(unit: Unit, failed: ChecksFailed): ViolationsError {
  const details = violationDetails(failed);
  const what =
    failed.section === 'precheck'
      ? 'the unit was not applied'
      : unit.options.transaction && !unit.options.batch
        ? 'the unit was rolled back'
        : 'its work stays done (it ran outside one transaction); revert it with its rollback or fix the data';
  return new ViolationsError(`unit ${unit.id}: ${failed.section} failed`, {
    details,
    hint: `${what}; the ledger records the violations. Fix the data or the unit, then run \`tenantify apply\` again`,
  });
}
