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
import { fitsOneMessage, isServerError, messageText, sendMessage, transactionalRunner, unitStatements, type UnitStatements } from './transactional.js';
import { cancellable } from './steps.js';
import type { ExecContext, UnitRunner } from './context.js';
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
  const entries = plan.toRun;
  const trains = new Trains(ctx, entries, hooks.afterUnit);
  for (let i = 0; i < entries.length; ) {
    const entry = entries[i] as PlanEntry;
    if (ctx.interrupt.requested) throw interrupted(ctx.interrupt.requested, entry.unit.id);
    if (ctx.dryRun && !entry.unit.options.transaction) {
      ctx.reporter.note(`${entry.unit.id}: not run in a dry run (it runs outside a transaction)`);
      reports.push({ id: entry.unit.id, outcome: 'not-run', durationMs: 0, checks: [] });
      i++;
      continue;
    }
    if (trains.canLeaveAt(i)) {
      i += await trains.runFrom(i, reports);
      continue;
    }
    reports.push(await applyUnit(ctx, entry));
    await hooks.afterUnit?.(entry);
    i++;
  }
}

interface Train {
  entries: PlanEntry[];
  checks: CheckResult[][];
  sentAt: number;
  /** The message's results, or why it failed; never rejects. */
  settled: Promise<{ results: pg.QueryResult[] } | { error: unknown }>;
}

/**
 * Units that need no round trip of their own (see startCanTravelWithUnit) travel several
 * to a message: each unit's start and body committed in transactions of its own as it
 * goes (status shows where the message is), and the server skips the rest of the text at
 * the first error. That saves a round trip and the server's work of a message per unit.
 * The length doubles while messages come back within 100 ms, up to 32, and is one again
 * after a message slower than a second: the terminal reports a message's units when it is
 * back, so units are not held together once one of them is slow. The next message leaves
 * as soon as one is back, the units of the one back are reported while it runs, and the
 * texts of the next one are built while one runs. The guards look at the database after
 * every unit (`afterUnit`): with them, a unit to a message, and the next one waits for them.
 */
class Trains {
  private length = 1;
  private readonly maxLength: number;
  private readonly texts = new Map<PlanEntry, UnitStatements>();

  constructor(
    private readonly ctx: ExecContext,
    private readonly entries: PlanEntry[],
    private readonly afterUnit: ExecHooks['afterUnit'],
  ) {
    this.maxLength = afterUnit ? 1 : 32;
  }

  canLeaveAt(index: number): boolean {
    const entry = this.entries[index];
    return entry !== undefined && startCanTravelWithUnit(this.ctx, entry);
  }

  /** Sends messages from entry `from` on while units can travel; returns how many entries it is done with. */
  async runFrom(from: number, reports: UnitReport[]): Promise<number> {
    const { ctx } = this;
    let next = from;
    let train = this.send(next);
    ctx.reporter.unitStarted(train.entries[0] as PlanEntry);
    for (;;) {
      this.prepare(next + train.entries.length, this.length * 2);
      const outcome = await cancellable(ctx, () => train.settled);
      if ('error' in outcome) return next - from + (await this.failed(train, outcome.error, reports));
      const elapsedMs = performance.now() - train.sentAt;
      this.length = elapsedMs > 1000 ? 1 : elapsedMs < 100 ? Math.min(this.length * 2, this.maxLength) : this.length;
      next += train.entries.length;
      const sendNext = (): Train | undefined => (!ctx.interrupt.requested && this.canLeaveAt(next) ? this.send(next) : undefined);
      let following = this.afterUnit ? undefined : sendNext();
      const applied = outcome.results.filter((r) => r.fields?.[0]?.name === appliedResultName).map((r) => r.rows[0]?.[appliedResultName] as number | null);
      // Every unit of the message is applied; their durations, unless a body's own results look like the ledger's.
      this.report(train, train.entries.map((_, k) => (applied.length === train.entries.length ? applied[k] : undefined)), reports);
      if (this.afterUnit) {
        await this.afterUnit(train.entries[0] as PlanEntry);
        following = sendNext();
      }
      if (!following) return next - from;
      ctx.reporter.unitStarted(following.entries[0] as PlanEntry);
      train = following;
    }
  }

  /** The next message from entry `from`, sent: at least that unit, which must be able to travel. */
  private send(from: number): Train {
    const entries: PlanEntry[] = [];
    let bytes = 0;
    for (let i = from; i < from + this.length && this.canLeaveAt(i); i++) {
      const entry = this.entries[i] as PlanEntry;
      bytes += entry.unit.statements.reduce((n, s) => n + s.sql.length, 0);
      if (entries.length > 0 && bytes > trainTextBytes) break;
      entries.push(entry);
    }
    this.prepare(from, entries.length);
    const units = entries.map((entry) => this.texts.get(entry) as UnitStatements);
    for (const entry of entries) this.texts.delete(entry);
    const settled = sendMessage(this.ctx, messageText(entries, units)).then(
      (results) => ({ results }),
      (error: unknown) => ({ error }),
    );
    return { entries, checks: units.map((u) => u.checks), sentAt: performance.now(), settled };
  }

  /** Builds the texts of up to `count` units from `from` on that lack them. */
  private prepare(from: number, count: number): void {
    for (let i = from; i < from + count && this.canLeaveAt(i); i++) {
      const entry = this.entries[i] as PlanEntry;
      if (!this.texts.has(entry)) this.texts.set(entry, unitStatements(this.ctx, entry, startStatements(this.ctx, entry)));
    }
  }

  /** The first `durations.length` units of the train are applied, with their durations on the server's clock where known. */
  private report(train: Train, durations: (number | null | undefined)[], reports: UnitReport[]): void {
    const share = Math.round((performance.now() - train.sentAt) / train.entries.length);
    for (const [k, entry] of train.entries.slice(0, durations.length).entries()) {
      const durationMs = durations[k] ?? share;
      const checks = train.checks[k] ?? [];
      if (k > 0) this.ctx.reporter.unitStarted(entry);
      this.ctx.reporter.unitDone(entry.unit, { durationMs, checks });
      reports.push({ id: entry.unit.id, outcome: 'applied', durationMs, checks });
    }
  }

  /**
   * The message stopped at an error. The ledger says which units it applied; the unit that
   * failed runs again alone (statement by statement once its start is recorded), which
   * reports its error as it always does, or applies it after a lock timeout. Returns how
   * many units it is done with.
   */
  private async failed(train: Train, error: unknown, reports: UnitReport[]): Promise<number> {
    const { ctx } = this;
    this.length = 1;
    await ctx.session.client.query('ROLLBACK').catch(() => {});
    if (!isServerError(error) && !ctx.interrupt.requested) throw error;
    await ctx.ledger.recheckPrepared();
    const recorded = await ctx.ledger.unitsOfRun(ctx.runId, train.entries.map((e) => e.unit.id));
    const durations: (number | null)[] = [];
    for (const entry of train.entries) {
      const row = recorded.get(entry.unit.id);
      if (row?.status !== 'applied') break;
      durations.push(row.durationMs);
    }
    this.report(train, durations, reports);
    const done = durations.length;
    const failed = train.entries[done];
    // All of them committed: the error (a cancel) came after the last one.
    if (!failed) return done;
    const started = recorded.get(failed.unit.id)?.status === 'running';
    if (ctx.interrupt.requested) {
      if (!started) return done;
      if (done > 0) ctx.reporter.unitStarted(failed);
      const failure = await recordFailure(ctx, failed.unit, error);
      ctx.reporter.unitFailed(failed.unit, failure.message);
      throw failure;
    }
    reports.push(await applyUnit(ctx, failed, { startRecorded: started }));
    await this.afterUnit?.(failed);
    return done + 1;
  }
}

/** Up to a message's worth of SQL. */
const trainTextBytes = 1024 * 1024;

/**
 * One unit: its start, precheck, kind's runner. `startRecorded`: the message that carried
 * the unit recorded its start and failed at it; the unit runs statement by statement.
 */
export async function applyUnit(ctx: ExecContext, entry: PlanEntry, { startRecorded = false } = {}): Promise<UnitReport> {
  const { unit } = entry;
  const startedAt = performance.now();
  ctx.reporter.unitStarted(entry);
  if (!ctx.dryRun && !startRecorded) await ctx.ledger.transition(startTransition(ctx, entry));
  try {
    const prechecks = await runChecks(ctx.session.client, unit.prechecks, 'precheck', unit);
    if (prechecks.some((c) => !c.ok)) throw new ChecksFailed('precheck', prechecks);
    if (!startRecorded) await snapshotBefore(ctx, entry);
    const outcome = await runnerFor(unit).run(ctx, entry, startedAt, startRecorded);
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
    firstRecord: entry.ledger === undefined,
    ...(entry.resume.kind === 'start' ? { progress: {} } : {}),
    detail: { file: unit.file, resume: entry.resume, previousStatus: entry.status },
  };
}

/**
 * A unit sent as one message, with no precheck and nothing to snapshot, needs no round trip
 * of its own to record its start: it travels in a message (see Trains), its start with it.
 */
function startCanTravelWithUnit(ctx: ExecContext, entry: PlanEntry): boolean {
  const { unit } = entry;
  return runnerFor(unit) === transactionalRunner && fitsOneMessage(ctx, unit) && unit.prechecks.length === 0 && !(ctx.snapshots && mayNeedSnapshot(unit));
}

/** The start and what `snapshotBefore` would record (the skipped snapshot with --no-snapshot), as text. */
function startStatements(ctx: ExecContext, entry: PlanEntry): string[] {
  const start = ctx.ledger.transitionText(startTransition(ctx, entry));
  return ctx.snapshots ? [start] : [start, ctx.ledger.saveSnapshotText(ctx.runId, entry.unit.id, null, 'snapshot_skipped', snapshotsOff)];
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
