/**
 * `batch <table> key=<column> size=N`: the body runs once per keyset range ($1 exclusive,
 * $2 inclusive). Each batch commits together with the unit's cursor in the ledger, so a
 * killed run resumes at the next batch and no batch is applied twice.
 *
 * Rows inserted while the backfill runs: the open-ended last segment is walked up to the last
 * key it found when the walk started, then once more up to the last key found when it got
 * there, and no further. Chasing new keys until none are left would never end beside an app
 * that inserts faster than a throttled backfill walks. Rows inserted after that second look,
 * or below the cursor, are not walked: in a scaffolded plan they carry their key already (the
 * key trigger comes first); in a plain unit, its verify sections are the place to catch them.
 */
import { availableParallelism } from 'node:os';
import { asStatementFailure, cancellable, inTransaction, retrying, runStatement, unitContext } from './steps.js';
import type { BatchSettings, ExecContext, Runner, Work } from './context.js';
import { firstStatements, type BatchDirective, type Statement, type Unit } from '../plan/types.js';
import { Ledger, type UnitProgress } from '../db/ledger.js';
import { connect, type Session } from '../db/connection.js';
import { isDistributed, oneConnectionPerWorker, restoreConnectionsPerWorker } from '../db/citus.js';
import { rangesOf } from './key-ranges.js';
import {
  decide,
  fastestProbe,
  defaultThrottle,
  idleCost,
  measureAppCost,
  nextSize,
  type AppCost,
  type Decision,
  type Idle,
  type Pacing,
  unitThrottle,
} from './throttle.js';

export const batchedRunner: Runner = {
  name: 'batched',
  inTransaction: false,
  async body(ctx: ExecContext, work: Work): Promise<string> {
    const unit = walked(work);
    const batch = unit.options.batch as BatchDirective;
    const settings = ctx.batching ?? defaultBatchSettings;
    const keys = rangesOf(ctx.session, unit, batch);
    const resumed = work.resume.kind === 'cursor' ? resumeSegments(work.progress) : undefined;
    const segments = resumed ?? (await keys.segments(ctx.dryRun ? 1 : settings.parallel));
    const progress: UnitProgress = {
      segments,
      rowsDone: resumed ? (work.progress?.rowsDone ?? 0) : 0,
      rowsTotal: await keys.estimateTotal(),
      batches: resumed ? (work.progress?.batches ?? 0) : 0,
    };
    if (resumed)
      ctx.reporter.note(`${unit.id}: resuming after key ${segments.map((g) => g.cursor).join(', ')} (${progress.rowsDone} rows done)`);
    const recorded = !ctx.dryRun && work.direction.name === 'apply';
    if (recorded) await ctx.ledger.saveProgress(ctx.runId, unit.id, progress);
    await runSegments(ctx, unit, segments, progress, settings, recorded);
    return `${progress.rowsDone} rows in ${progress.batches} batches`;
  },
};

/**
 * What the batches run: the unit, or its batched rollback file under the unit's id. A
 * rollback's batches keep no cursor in the ledger (the unit's progress is the apply's: a
 * failed backfill resumes from it), so a rollback run again walks from the first key: its
 * batches must find what is left to undo, as a clear (`SET key = NULL ... WHERE key IS NOT
 * NULL`) does.
 */
function walked(work: Work): Unit {
  return work.script === work.unit ? work.unit : { ...work.unit, ...work.script, id: work.unit.id };
}

/** A contiguous range of keys, (from, to], walked by one worker; `to` null is open-ended. */
export interface Segment {
  from: string;
  to: string | null;
  cursor: string;
}

/** Progress of an older ledger row (one cursor) reads as one open segment. */
function resumeSegments(progress: UnitProgress | undefined): Segment[] | undefined {
  if (progress?.segments) return progress.segments;
  if (progress?.cursor !== undefined) return [{ from: progress.cursor, to: null, cursor: progress.cursor }];
  return undefined;
}

/**
 * Workers take segments from a queue, each on its own connection, batch after batch. One
 * worker's failure stops the others after their batch in flight; the first error is thrown.
 */
async function runSegments(
  ctx: ExecContext,
  unit: Unit,
  segments: Segment[],
  progress: UnitProgress,
  settings: BatchSettings,
  recorded: boolean,
): Promise<void> {
  const queue = segments.map((segment, index) => ({ segment, index }));
  const workers = Math.max(1, Math.min(ctx.dryRun ? 1 : settings.parallel, queue.length));
  const ratesStarted = performance.now();
  let rowsThisRun = 0;
  let failure: unknown;
  const report = (rows: number, throttled: string | undefined): void => {
    rowsThisRun += rows;
    if (throttled) progress.throttled = throttled;
    else delete progress.throttled;
    progress.rowsDone = (progress.rowsDone ?? 0) + rows;
    progress.batches = (progress.batches ?? 0) + 1;
    progress.rowsPerSecond = Math.round(rowsThisRun / Math.max(0.001, (performance.now() - ratesStarted) / 1000));
    ctx.reporter.unitProgress(unit, progress);
  };
  const walk: Walk = { report, stopped: () => failure !== undefined, aim: {} };
  const work = async (worker: ExecContext): Promise<void> => {
    for (let next = queue.shift(); next && failure === undefined; next = queue.shift()) {
      await walkSegment(worker, unit, next.segment, next.index, settings, recorded, walk);
    }
  };
  const extra = await Promise.all(Array.from({ length: workers - 1 }, () => connect(ctx.session.url, `apply ${unit.id} worker`)));
  const distributed = await isDistributed(ctx.session, (unit.options.batch as BatchDirective).table);
  try {
    const contexts = [ctx, ...extra.map((session) => ({ ...ctx, session, ledger: new Ledger(session.db, ctx.ledger.schema) }))];
    if (distributed) await oneConnectionPerWorker(contexts.map((worker) => worker.session));
    // A signal cancels every worker's batch in flight, not only the first session's.
    await Promise.all(
      contexts.map((worker) => cancellable(worker, () => work(worker)).catch((error: unknown) => void (failure ??= error))),
    );
  } finally {
    if (distributed) await restoreConnectionsPerWorker(ctx.session).catch(() => {});
    await Promise.all(extra.map((session) => session.close()));
  }
  if (failure !== undefined) throw failure;
}

/** What the workers of one walk share. */
interface Walk {
  /** Rows done by a batch, and why the throttle slows the walk down (undefined: it does not). */
  report: (rows: number, throttled: string | undefined) => void;
  /** True once a worker failed: the others stop after their batch. */
  stopped: () => boolean;
  /** The duration batches aim at once the application waited on one worker's batch: every worker's from then on (throttle.ts lockWaitTarget). */
  aim: SharedAim;
}

async function walkSegment(
  ctx: ExecContext,
  unit: Unit,
  segment: Segment,
  index: number,
  settings: BatchSettings,
  recorded: boolean,
  { report, stopped, aim }: Walk,
): Promise<void> {
  const keys = rangesOf(ctx.session, unit, unit.options.batch as BatchDirective);
  const pace = new Pace((unit.options.batch as BatchDirective).size, unitSettings(settings, unit), aim);
  if (!ctx.dryRun) await pace.start(ctx.session);
  let throttled: string | undefined;
  // The open segment's end: the last key now, and once more when the walk gets there (see the top of the file).
  let end = segment.to ?? (await keys.last());
  let lookAgain = segment.to === null;
  const nextUpper = async (): Promise<string | undefined> => {
    for (;;) {
      const upper = end === undefined ? undefined : await keys.upperBound(segment.cursor, pace.size, end);
      if (upper !== undefined || !lookAgain) return upper;
      lookAgain = false;
      end = await keys.last();
    }
  };
  for (;;) {
    ctx.interrupt.throwIfRequested();
    if (stopped()) return;
    const upper = await nextUpper();
    if (upper === undefined) return;
    const from = segment.cursor;
    const batchStarted = performance.now();
    const { rows, cost } = await retrying(ctx, unit, () =>
      inTransaction(ctx, unit.options, async () => {
        const changed = await runBatch(ctx, unit, from, upper);
        if (recorded) await ctx.ledger.advanceSegment(unit.id, index, upper, changed);
        // What the application pays, measured before the commit: sessions held up by the batch's row locks still wait.
        return { rows: changed, cost: await measureAppCost(ctx.session) };
      }),
    );
    segment.cursor = upper;
    const decision = pace.next(performance.now() - batchStarted, await fastestProbe(ctx.session, cost));
    // The progress line carries the reason while it lasts; a note marks when throttling starts and ends.
    if ((decision.reason === undefined) !== (throttled === undefined))
      ctx.reporter.note(`${unit.id}: ${decision.reason ? `throttled: ${decision.reason}` : 'no longer throttled'}`);
    throttled = decision.reason;
    report(rows, throttled);
    if (decision.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, decision.pauseMs));
  }
}

/**
 * Workers by default. Beside a live application (the throttle on, the default), one: the duty
 * cycle then holds the backfill to `duty` of one core of the server, whatever its size, and
 * never two of its batches on the CPU at once. With two, on a 2-core server, pgbench's TPC-B
 * came late whenever both workers' batches ran together, and had its p99 within 3x of its
 * baseline in 1 run of 4; with one, in every run (bench/pgbench-live.ts, README "Seventh
 * pass"). More is the DBA's choice (`--parallel`, `batch.parallel`): a larger server, or a
 * maintenance window. With the throttle off, the client's cores, between 2 and 4: a batch
 * spends most of its time waiting on the server, so even one core keeps two workers busy.
 */
export function defaultParallel(throttled: boolean, cores = availableParallelism()): number {
  return throttled ? 1 : Math.min(4, Math.max(2, cores));
}

export const defaultBatchSettings: BatchSettings = {
  targetMs: 300,
  pauseMs: 0,
  maxReplicationLagMs: 10_000,
  parallel: defaultParallel(defaultThrottle.enabled),
  throttle: defaultThrottle,
};

/** The lowered duration batches aim at, shared by the workers of one walk: they walk the same table's rows. */
export interface SharedAim {
  targetMs?: number;
}

/** Batch sizes and pauses for one worker: the throttle's decisions (throttle.ts), one batch after another. */
export class Pace {
  private pacing: Pacing;
  private idle: Idle = { probeMs: 0, activeSessions: 0 };

  constructor(
    initial: number,
    private readonly settings: BatchSettings,
    private readonly aim: SharedAim = {},
  ) {
    this.pacing = { size: initial, backoffMs: 0 };
  }

  get size(): number {
    return this.pacing.size;
  }

  /** The probe before the first batch, with the application as usual: the throttle's reference. */
  async start(session: Session): Promise<void> {
    if (this.settings.throttle.enabled) this.idle = await idleCost(session);
  }

  /** After a batch: the throttle's decision (throttle.ts) for the next one, from what the application paid. */
  next(durationMs: number, cost: AppCost): Decision {
    const { targetMs, pauseMs, maxReplicationLagMs, throttle } = this.settings;
    // The walk's aim, once lowered, is every worker's: it only ever goes down, and each lowering is stored there.
    const pacing = this.aim.targetMs === undefined ? this.pacing : { ...this.pacing, targetMs: this.aim.targetMs };
    const decision = decide(pacing, { durationMs, cost }, { targetMs, pauseMs, maxReplicationLagMs, throttle, idle: this.idle });
    // decide never raises the target it is given: what it returns is the walk's aim from now on.
    if (decision.targetMs !== undefined) this.aim.targetMs = decision.targetMs;
    this.pacing = decision;
    return decision;
  }
}

export { nextSize };

/** The run's batch settings, with the unit's `throttle` directive over the throttle's. */
function unitSettings(settings: BatchSettings, unit: Unit): BatchSettings {
  return { ...settings, throttle: unitThrottle(settings.throttle, unit.options.throttle) };
}

async function runBatch(ctx: ExecContext, unit: Unit, from: string, to: string): Promise<number> {
  if (unit.definition?.type === 'backfill') {
    try {
      const changed = await unit.definition.batch(ctx.session.db, { from, to }, unitContext(ctx, unit.id));
      return Number(changed ?? 0);
    } catch (error) {
      throw asStatementFailure(error, unit, undefined);
    }
  }
  return runStatement(ctx, unit, firstStatements(unit.statements, 1)[0] as Statement, [from, to]);
}
