/**
 * The adaptive throttle of batched backfills: after each batch, what the application pays
 * for it is measured, and the next batch is made smaller, or put off, to keep that cost
 * within a target. Lock waits are not the only cost: on a small server a backfill competes
 * with the application for CPU and I/O, and its queries get slower long before anyone
 * waits on a lock.
 *
 * Measured at the end of each batch, inside its transaction, before it commits
 * (`measureAppCost`, on the worker's connection), so that what waits on the
 * batch's row locks is still waiting:
 * - the application's sessions waiting on this batch's locks: each of them is a query held
 *   up for as long as the batch has run (tenantify's other workers, which wait on the
 *   ledger's row, left out);
 * - the application's active sessions (client sessions of the database running a statement,
 *   tenantify's own left out): when its queries slow down, they pile up; the limit is twice
 *   as many as before the first batch, and at least two more;
 * - the latency of that query itself: a tiny catalog read, the probe (the fastest of three:
 *   one inside the transaction, two after its commit).
 *   Its limit (default: four times its latency before the first batch, at least 5 ms): past it
 *   the server is busy, and the application's queries wait for CPU and I/O too;
 * - the worst replica's replay lag, where there is a replica.
 * The reference (`Idle`) is the median of a few probes before the first batch, with the
 * application running as usual.
 *
 * `decide` turns these into the next batch's size and the pause before it: a pure
 * function, tested without a database (GitLab's batched migrations tune the batch size to a
 * time-efficiency band; gh-ost throttles on lag and load). Besides, a backfill keeps to a
 * duty cycle: each worker spends at most `duty` of the wall time in batches, so that even on an
 * idle-looking server it leaves room for the application. A third by default (a pause twice as
 * long as each batch), with one worker while throttled (batched.ts defaultParallel): the
 * backfill takes about a third of one core of the server. pgbench's TPC-B beside the
 * scaffolded apply on a 2-core machine, p99 against its baseline (bench/pgbench-live.ts,
 * README "Sixth pass" and "Seventh pass"): two workers at a half, median 4.4x; two at a third,
 * 2.8x and 3.3x, within 3x in 4 runs of 10; one at a third, 2.2x, within 3x in 5 of 5.
 */
import type { Session } from '../db/connection.js';
import type { ThrottleSettings } from '../plan/types.js';

export type { ThrottleSettings };

export const defaultThrottle: ThrottleSettings = { enabled: true, probeLimitMs: undefined, duty: 1 / 3, maxPauseMs: 5000 };

/** The throttle a unit runs under: its `-- tenantify:throttle` directive over the plan's (a backfill's walk, a precheck in ranges). */
export function unitThrottle(plan: ThrottleSettings, own: Partial<ThrottleSettings> | undefined): ThrottleSettings {
  return own ? { ...plan, ...own } : plan;
}

/** The probe's limit when none is set: its idle latency times this, and at least probeFloorMs. */
export const probeFactor = 4;
export const probeFloorMs = 5;
/** The application's active sessions allowed: its idle count times this, and at least activeMargin more. */
export const activeFactor = 2;
export const activeMargin = 2;

/** What the application pays, measured at the end of a batch. */
export interface AppCost {
  /** The probe query's latency, ms. */
  probeMs: number;
  /** Sessions waiting on a lock the batch holds. */
  lockWaiters: number;
  /** The application's sessions running a statement (tenantify's own left out). */
  activeSessions: number;
  /** The worst replica's replay lag, ms (0 without replicas). */
  replicationLagMs: number;
}

/** What a batch came to, and what the application paid meanwhile. */
export interface BatchOutcome {
  /** The batch's duration, ms. */
  durationMs: number;
  cost: AppCost;
}

export interface Pacing {
  /** Rows in the next batch. */
  size: number;
  /** The pause the throttle added last (it decays while the application is served). */
  backoffMs: number;
  /** The duration batches aim at from now on: the unit's target until lock waits lower it (lockWaitTarget); undefined: the unit's. */
  targetMs?: number;
}

export interface Decision extends Pacing {
  /** Wait this long before the next batch. */
  pauseMs: number;
  /** Why the backfill slows down, for the progress line; undefined when it does not. */
  reason: string | undefined;
}

/** The limits `decide` works within: the unit's target duration and fixed pause, the replica lag allowed. */
export interface Limits {
  targetMs: number;
  pauseMs: number;
  maxReplicationLagMs: number;
  throttle: ThrottleSettings;
  /** The probe before the first batch: the reference its latency and the active sessions are compared with. */
  idle: Idle;
}

/** The probe's latency (ms) and the application's active sessions before the first batch. */
export interface Idle {
  probeMs: number;
  activeSessions: number;
}

export const minBatch = 10;
export const maxBatch = 1_000_000;

/**
 * The lowest a batch's target duration goes on lock waits: this share of the unit's target
 * (300 ms by default: 37.5 ms).
 */
export const lockWaitFloor = 1 / 8;

/**
 * The duration batches aim at after this one. A session that waited on the batch's row
 * locks says the application writes the rows being walked: it waited until the batch's
 * commit, and so does every write that lands on a row of a batch in flight. How many of the
 * application's writes wait, over the whole walk, depends on how long each batch holds its
 * locks, not on its rows (a batch of twice the rows meets twice the writers for the same
 * time), so the size alone is not the remedy: halving it after a wait, as the backoff does,
 * is undone as soon as the batches grow back to the target. The first batch with lock
 * waiters lowers the target to lockWaitFloor of the unit's at once, for the rest of the
 * walk: the rows stay as hot as they were, and halving one wait at a time let a few more
 * long batches through (on pgbench, each wait a TPC-B client's and the next few of its
 * scheduled transactions late). Without waiters it stays where it is: a walk beside an
 * application that writes elsewhere (or a test with none) keeps the unit's target.
 */
export function lockWaitTarget(previous: Pacing, batch: BatchOutcome, limits: Pick<Limits, 'targetMs'>): number {
  const current = previous.targetMs ?? limits.targetMs;
  if (batch.cost.lockWaiters === 0) return current;
  return Math.min(current, limits.targetMs * lockWaitFloor);
}

/** The next batch size: toward the target duration, at most doubling or halving at a time. */
export function nextSize(size: number, durationMs: number, targetMs: number): number {
  const ratio = targetMs / Math.max(durationMs, 1);
  const next = Math.round(size * Math.min(2, Math.max(0.5, ratio)));
  return Math.min(maxBatch, Math.max(minBatch, next));
}

/** The probe's latency limit: the configured one, else a multiple of its idle latency. */
export function probeLimit(limits: Pick<Limits, 'throttle' | 'idle'>): number {
  return limits.throttle.probeLimitMs ?? Math.max(probeFloorMs, limits.idle.probeMs * probeFactor);
}

/** The application's active sessions allowed: a multiple of the idle count, and a margin over it. */
export function activeLimit(idle: Idle): number {
  return Math.max(idle.activeSessions * activeFactor, idle.activeSessions + activeMargin);
}

/**
 * The next batch's size and the pause before it, from the batch that just ran and what the
 * application paid meanwhile. Every signal over its limit halves the size and grows the
 * backoff (doubling, from the batch's own duration, up to maxPauseMs); while none is, the
 * backoff halves each batch, and the size grows again once it is over. Lock waits also
 * lower the duration batches aim at (lockWaitTarget). The duty cycle's pause and the
 * configured pause come on top.
 */
export function decide(previous: Pacing, batch: BatchOutcome, limits: Limits): Decision {
  // This batch is sized from the target it ran under (the halving below answers its lock waits); the next ones aim at the new one.
  const targetMs = lockWaitTarget(previous, batch, limits);
  let size = nextSize(previous.size, batch.durationMs, previous.targetMs ?? limits.targetMs);
  const reasons: string[] = [];
  const { cost } = batch;
  if (cost.lockWaiters > 0)
    reasons.push(
      `${cost.lockWaiters} session(s) wait on the batch's locks${targetMs < (previous.targetMs ?? limits.targetMs) ? ` (batches now aim at ${round(targetMs)} ms)` : ''}`,
    );
  if (limits.throttle.enabled) {
    const active = activeLimit(limits.idle);
    if (cost.activeSessions > active)
      reasons.push(
        `${cost.activeSessions} application sessions active (limit ${active}, ${limits.idle.activeSessions} before the backfill)`,
      );
    const limit = probeLimit(limits);
    if (cost.probeMs > limit)
      reasons.push(
        `the probe query took ${round(cost.probeMs)} ms (limit ${round(limit)} ms, ${round(limits.idle.probeMs)} ms before the backfill)`,
      );
  }
  const lagging = cost.replicationLagMs > limits.maxReplicationLagMs;
  if (lagging) reasons.push(`a replica lags ${Math.round(cost.replicationLagMs)} ms (limit ${limits.maxReplicationLagMs} ms)`);
  let backoffMs: number;
  if (reasons.length > 0) {
    size = Math.max(minBatch, Math.floor(Math.min(size, previous.size) / 2));
    backoffMs = Math.min(limits.throttle.maxPauseMs, Math.max(previous.backoffMs * 2, batch.durationMs * 2, 50));
    if (lagging) backoffMs = Math.max(backoffMs, Math.min(10_000, cost.replicationLagMs / 2));
  } else {
    backoffMs = previous.backoffMs < 20 ? 0 : previous.backoffMs / 2;
    // Batches grow again only once the backoff is over: a batch as long as the target is what held the application up.
    if (previous.backoffMs > 0) size = Math.min(size, previous.size);
  }
  const duty = limits.throttle.enabled ? dutyPause(batch.durationMs, limits.throttle.duty) : 0;
  const pauseMs = Math.round(Math.max(limits.pauseMs, duty, backoffMs));
  const reason = reasons.length > 0 ? `${reasons.join('; ')}: batch size down to ${size}, pausing ${pauseMs} ms` : undefined;
  return { size, backoffMs, pauseMs, reason, ...(targetMs === limits.targetMs ? {} : { targetMs }) };
}

/** The pause after a batch of `durationMs` that keeps batches to `duty` of the wall time. */
export function dutyPause(durationMs: number, duty: number): number {
  if (duty >= 1) return 0;
  return (durationMs * (1 - duty)) / duty;
}

function round(ms: number): string {
  return ms < 10 ? ms.toFixed(1) : String(Math.round(ms));
}

/**
 * The application's sessions, by application_name: tenantify's own left out (another worker
 * of the same backfill waits on this batch's ledger row until it commits: that wait is the
 * backfill's, and counting it halved every worker's batches for nothing), and Citus's
 * connections between its nodes.
 */
const application = "application_name NOT LIKE 'tenantify %' AND application_name NOT LIKE 'citus_internal%'";

/**
 * The probe, inside the batch's transaction before it commits: the application's sessions
 * waiting on a lock this session holds, and running a statement, and the worst replica's
 * lag, in one tiny catalog query whose own latency tells how busy the server is.
 *
 * It reads the functions under pg_stat_activity and pg_stat_replication, not the views:
 * planning the views' joins (roles, databases) costs ten times what the probe does
 * (PostgreSQL 15, 8 other sessions: 3-5 ms a probe through the views, 0.3-0.4 ms
 * through the functions), and the probe inside the batch's transaction is time its row
 * locks are held.
 */
export async function measureAppCost(session: Session): Promise<AppCost> {
  const started = performance.now();
  const result = await session.client.query<{ waiters: number; active: number; lag: number | null }>(
    `SELECT count(*) FILTER (WHERE wait_event_type = 'Lock' AND pg_backend_pid() = ANY (pg_blocking_pids(pid)) AND ${application})::int AS waiters,
            count(*) FILTER (WHERE state = 'active' AND backend_type = 'client backend' AND ${application})::int AS active,
            (SELECT max(extract(epoch FROM replay_lag) * 1000) FROM pg_stat_get_wal_senders())::float8 AS lag
       FROM pg_stat_get_activity(NULL)
      WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND pid <> pg_backend_pid()`,
  );
  const probeMs = performance.now() - started;
  const row = result.rows[0];
  return { probeMs, lockWaiters: row?.waiters ?? 0, activeSessions: row?.active ?? 0, replicationLagMs: row?.lag ?? 0 };
}

/**
 * After the commit, the probe `samples` times more: its latency is the fastest of all. One
 * slow probe is a busy machine's noise, every one slow is the server's load. (Only one runs
 * inside the batch's transaction, which holds its row locks meanwhile.)
 */
export async function fastestProbe(session: Session, cost: AppCost, samples = 2): Promise<AppCost> {
  let probeMs = cost.probeMs;
  for (let i = 0; i < samples; i++) probeMs = Math.min(probeMs, (await measureAppCost(session)).probeMs);
  return { ...cost, probeMs };
}

/** The reference before the first batch: the medians of a few probes, `spacingMs` apart. */
export async function idleCost(session: Session, samples = 5, spacingMs = 20): Promise<Idle> {
  const costs: AppCost[] = [];
  for (let i = 0; i < samples; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, spacingMs));
    costs.push(await fastestProbe(session, await measureAppCost(session)));
  }
  return { probeMs: median(costs.map((c) => c.probeMs)), activeSessions: median(costs.map((c) => c.activeSessions)) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}
