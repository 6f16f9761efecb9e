/**
 * The message transport: a unit's transaction (begin, body, verify, record, commit) sent as
 * one message, one round trip instead of one per statement, and units that need no round
 * trip of their own sent several to a message (Trains). Real and dry runs take it alike (a
 * dry run's transactions are savepoints and it records nothing). It is only a faster way to
 * run the lifecycle's steps: when a message fails, its unit runs again through the
 * lifecycle, step by step, which places the error under its line, shows the verify's rows,
 * and retries lock timeouts. (The one trace a failed first attempt leaves is what no
 * rollback undoes, such as sequence values.)
 */
import type pg from 'pg';
import { appliedResultName } from '../db/ledger.js';
import { mayNeedSnapshot } from '../db/snapshot-take.js';
import type { PlanEntry } from '../plan/planner.js';
import type { Check, Script, Unit } from '../plan/types.js';
import type { ExecContext, UnitReport } from './context.js';
import type { CheckResult } from './failure.js';
import { isConnectionLost } from './failure-report.js';
import { runnerFor } from './kinds.js';
import { appliedTransition, snapshotsOff, startTransition } from './records.js';
import { cancellable, timeoutSettings, transactionBounds } from './steps.js';
import { transactionalRunner } from './transactional.js';

/** A unit as statements: its start in the ledger (when it travels with the unit), its transaction's inside, and the verify results it records. */
export interface UnitStatements {
  start: string[];
  body: string[];
  checks: CheckResult[];
}

/** A script the transport can send as one message: SQL in one transaction. */
export function fitsOneMessage(script: Script): boolean {
  return runnerFor(script) === transactionalRunner && script.statements.length > 0;
}

/** A script that travels as one message in this run: not while locks are traced, which looks at them after each statement. */
export function travelsAsMessage(ctx: ExecContext, script: Script): boolean {
  return !ctx.traceLocks && fitsOneMessage(script);
}

/**
 * A script's statements for a message: its start, then inside its transaction the timeouts,
 * the body, each verify query as a block that raises when it returns a row, and `record`
 * (the ledger's record of it, none in a dry run), given the verify results it records.
 */
export function unitStatements(script: Script, start: string[], record: ((checks: CheckResult[]) => string) | undefined): UnitStatements {
  const checks: CheckResult[] = script.verifies.map(({ name }) => ({ name, section: 'verify', ok: true, violations: 0, sample: [] }));
  const body = [
    timeoutSettings(script.options, true),
    ...script.statements.map((s) => s.sql),
    ...script.verifies.map(raiseOnRows),
    record?.(checks) ?? '',
  ].filter(Boolean);
  return { start, body, checks };
}

/**
 * The text of a message of one or more units: `/* tenantify: <unit> *\/ BEGIN; <start>;
 * COMMIT; BEGIN; <body>; COMMIT`. The start commits on its own, so the ledger shows the
 * unit running while it runs (with its own BEGIN: a COMMIT with none is warned about in the
 * server's log). Each next unit's start commits with the unit before it, which saves a
 * transaction per unit: `/* tenantify: <first> to <last>, n units *\/ BEGIN; <start 1>;
 * COMMIT; BEGIN; <body 1>; <start 2>; COMMIT; BEGIN; <body 2>; <start 3>; COMMIT; ...`.
 * A dry run's transactions are savepoints. The leading comment is what pg_stat_activity
 * shows of it (it cuts the text after 1 kB).
 */
export function messageText(ids: string[], units: UnitStatements[], dryRun: boolean): string {
  const { begin, commit } = transactionBounds(dryRun);
  const parts: string[] = [];
  // Pushed one by one: a unit may hold 150,000 statements, more than a call's arguments can (no spread).
  const add = (statements: string[]): void => {
    for (const statement of statements) parts.push(statement);
  };
  units.forEach((u, k) => {
    if (k === 0 && u.start.length > 0) add([begin, ...u.start, commit]);
    add([begin]);
    add(u.body);
    add(units[k + 1]?.start ?? []);
    add([commit]);
  });
  const first = ids[0] ?? '';
  const label = ids.length === 1 ? first : `${first} to ${ids[ids.length - 1]}, ${ids.length} units`;
  // Statements on lines of their own, so a trailing line comment ends before the semicolon.
  return `/* tenantify: ${label} */ ${parts.join('\n;\n')}`;
}

/** A verify query as a statement that fails when the query returns a row. */
export function raiseOnRows(check: Pick<Check, 'sql'>): string {
  let tag = '$tenantify$';
  for (let i = 0; check.sql.includes(tag); i++) tag = `$tenantify${i}$`;
  return `DO ${tag} BEGIN IF EXISTS (\n${check.sql}\n) THEN RAISE EXCEPTION 'verify failed'; END IF; END ${tag}`;
}

/**
 * Sends a message of units. Its ledger records execute statements the session prepares once
 * (see Ledger.transitionText): they are prepared first when the session lacks them.
 */
async function sendMessage(ctx: ExecContext, text: string): Promise<pg.QueryResult[]> {
  await ctx.ledger.prepare();
  const results = (await ctx.session.client.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
  return Array.isArray(results) ? results : [results];
}

/** An error the server sent (it has a SQLSTATE), as opposed to a lost connection or a bug. */
function isServerError(error: unknown): boolean {
  return typeof (error as { code?: unknown }).code === 'string';
}

/** The open transaction of a failed message, rolled back (a dry run's savepoint: its outer transaction goes on). */
async function rollBackMessage(ctx: ExecContext): Promise<void> {
  await ctx.session.client.query(transactionBounds(ctx.dryRun).rollback).catch(() => {});
}

/**
 * A message failed: a lost connection or a bug is thrown on; after an error of the server's,
 * the unit may have dropped the ledger's prepared statements (DEALLOCATE, DISCARD), or the
 * failure was theirs: the server says which are left, and the next message prepares the rest.
 */
async function afterFailedMessage(ctx: ExecContext, error: unknown): Promise<void> {
  if (isConnectionLost(error) || (!isServerError(error) && !ctx.interrupt.requested)) throw error;
  await ctx.ledger.recheckPrepared();
}

/**
 * One unit's transaction, its start recorded already, as one message. Returns its verify
 * results, or undefined when the message failed and was rolled back: the caller runs the
 * unit step by step.
 */
export async function inOneMessage(
  ctx: ExecContext,
  id: string,
  script: Script,
  record: ((checks: CheckResult[]) => string) | undefined,
): Promise<CheckResult[] | undefined> {
  const unit = unitStatements(script, [], ctx.dryRun ? undefined : record);
  try {
    await cancellable(ctx, () => sendMessage(ctx, messageText([id], [unit], ctx.dryRun)));
    return unit.checks;
  } catch (error) {
    await rollBackMessage(ctx);
    if (ctx.interrupt.requested) throw error;
    await afterFailedMessage(ctx, error);
    return undefined;
  }
}

/**
 * A unit sent as one message, with no precheck and nothing to snapshot, needs no round trip
 * of its own to record its start: it travels in a train, its start with it.
 */
export function startCanTravel(ctx: ExecContext, unit: Unit): boolean {
  return travelsAsMessage(ctx, unit) && unit.prechecks.length === 0 && !(ctx.snapshots && mayNeedSnapshot(unit));
}

interface Train {
  entries: PlanEntry[];
  checks: CheckResult[][];
  sentAt: number;
  /** The message's results, or why it failed; never rejects. */
  settled: Promise<{ results: pg.QueryResult[] } | { error: unknown }>;
}

/** Runs a unit through the lifecycle, step by step after its message failed; `startRecorded`: the message recorded its start. */
export type RunAlone = (entry: PlanEntry, options: { startRecorded: boolean; messageFailed: boolean }) => Promise<UnitReport>;

/**
 * Units whose start can travel with them go several to a message: each unit's start and
 * body committed in transactions of its own as it goes (status shows where the message
 * is), and the server skips the rest of the text at the first error. That saves a round
 * trip and the server's work of a message per unit. The length doubles while messages come
 * back within 100 ms, up to 32, and is one again after a message slower than a second: the
 * terminal reports a message's units when it is back, so units are not held together once
 * one of them is slow. The next message leaves as soon as one is back, the units of the one
 * back are reported while it runs, and the texts of the next one are built while one runs.
 * The guards look at the database after every unit (`afterUnit`): with them, a unit to a
 * message, and the next one waits for them. A dry run records nothing to tell where a
 * message stopped: a unit to a message.
 */
export class Trains {
  private length = 1;
  private readonly maxLength: number;
  private readonly texts = new Map<PlanEntry, UnitStatements>();

  constructor(
    private readonly ctx: ExecContext,
    private readonly entries: PlanEntry[],
    private readonly runAlone: RunAlone,
    private readonly afterUnit: ((entry: PlanEntry) => Promise<void>) | undefined,
  ) {
    this.maxLength = afterUnit || ctx.dryRun ? 1 : 32;
  }

  canLeaveAt(index: number): boolean {
    const entry = this.entries[index];
    return entry !== undefined && startCanTravel(this.ctx, entry.unit);
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
      const applied = outcome.results
        .filter((r) => r.fields?.[0]?.name === appliedResultName)
        .map((r) => r.rows[0]?.[appliedResultName] as number | null);
      // Every unit of the message is applied; their durations, unless a body's own results look like the ledger's.
      this.report(
        train,
        train.entries.map((_, k) => (applied.length === train.entries.length ? applied[k] : undefined)),
        reports,
      );
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
    const text = messageText(
      entries.map((e) => e.unit.id),
      units,
      this.ctx.dryRun,
    );
    const settled = sendMessage(this.ctx, text).then(
      (results) => ({ results }),
      (error: unknown) => ({ error }),
    );
    return { entries, checks: units.map((u) => u.checks), sentAt: performance.now(), settled };
  }

  /** Builds the texts of up to `count` units from `from` on that lack them. */
  private prepare(from: number, count: number): void {
    const { ctx } = this;
    for (let i = from; i < from + count && this.canLeaveAt(i); i++) {
      const entry = this.entries[i] as PlanEntry;
      if (this.texts.has(entry)) continue;
      const record = ctx.dryRun
        ? undefined
        : (checks: CheckResult[]) => ctx.ledger.transitionText(appliedTransition(ctx, entry.unit, checks, 'since-start'));
      this.texts.set(entry, unitStatements(entry.unit, startStatements(ctx, entry), record));
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
   * failed runs again alone (step by step once its start is recorded), which reports its
   * error as it always does, applies it after a lock timeout, or records the interruption.
   * Returns how many units it is done with.
   */
  private async failed(train: Train, error: unknown, reports: UnitReport[]): Promise<number> {
    const { ctx } = this;
    this.length = 1;
    await rollBackMessage(ctx);
    await afterFailedMessage(ctx, error);
    // A dry run's train is one unit, and records nothing.
    const recorded = ctx.dryRun
      ? new Map()
      : await ctx.ledger.unitsOfRun(
          ctx.runId,
          train.entries.map((e) => e.unit.id),
        );
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
    if (ctx.interrupt.requested && !started) return done;
    reports.push(await this.runAlone(failed, { startRecorded: started, messageFailed: true }));
    await this.afterUnit?.(failed);
    return done + 1;
  }
}

/** Up to a message's worth of SQL. */
const trainTextBytes = 1024 * 1024;

/** A unit's start and what the snapshot step would record (the skipped snapshot with --no-snapshot), as text; none in a dry run. */
function startStatements(ctx: ExecContext, entry: PlanEntry): string[] {
  if (ctx.dryRun) return [];
  const start = ctx.ledger.transitionText(startTransition(ctx, entry));
  return ctx.snapshots ? [start] : [start, ctx.ledger.saveSnapshotText(ctx.runId, entry.unit.id, null, 'snapshot_skipped', snapshotsOff)];
}
