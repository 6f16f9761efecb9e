/**
 * An autovacuum worker in a unit's way. Autovacuum holds SHARE UPDATE EXCLUSIVE on the table
 * it works on, which blocks ALTER TABLE (ACCESS EXCLUSIVE), VALIDATE CONSTRAINT and CREATE
 * INDEX CONCURRENTLY (SHARE UPDATE EXCLUSIVE). PostgreSQL cancels an autovacuum that blocks
 * another session, but only once that session has waited deadlock_timeout (1 s by default):
 * a unit whose lock_timeout is shorter (500 ms) gives up first, try after try, while the
 * application's queries queue behind its lock request each time. Right after a backfill of a
 * large table autovacuum has seconds of work on it: on pgbench's plan the accounts' NOT NULL
 * check (`ADD CONSTRAINT ... NOT VALID`, a catalog change of a few milliseconds) retried for
 * 9.5 s, and TPC-B's worst transactions were those queued behind it.
 *
 * So while a unit's statements run longer than `watchAfterMs`, a second session looks, every
 * `watchEveryMs`, at what blocks the unit's session, and cancels an autovacuum worker among
 * the blockers: what PostgreSQL itself does, sooner. Never one that prevents wraparound
 * (PostgreSQL does not cancel those either). Autovacuum comes back to the table on its next
 * round. Cancelling it takes superuser or pg_signal_backend; without them the unit waits as
 * before, and a note says why.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type Session } from '../db/connection.js';
import type { ExecContext } from './context.js';

export const watchAfterMs = 50;
export const watchEveryMs = 50;

/** Autovacuum workers (not anti-wraparound) among the sessions blocking `$1`, each cancelled. */
const cancelBlockingAutovacuum = `
  SELECT a.pid, regexp_replace(a.query, '^autovacuum: ', '') AS work, pg_cancel_backend(a.pid) AS cancelled
    FROM pg_stat_activity a
   WHERE a.pid = ANY (pg_blocking_pids($1))
     AND a.backend_type = 'autovacuum worker'
     AND a.query NOT LIKE '%(to prevent wraparound)%'`;

/** Runs `fn` (statements on ctx.session) while cancelling any autovacuum that blocks that session. */
export async function yieldingAutovacuum<T>(ctx: ExecContext, unitId: string, fn: () => Promise<T>): Promise<T> {
  const done = new AbortController();
  const watching = watch(ctx, unitId, done.signal);
  try {
    return await fn();
  } finally {
    done.abort();
    await watching;
  }
}

async function watch(ctx: ExecContext, unitId: string, done: AbortSignal): Promise<void> {
  if (!(await pause(watchAfterMs, done))) return;
  let watcher: Session | undefined;
  try {
    watcher = await connect(ctx.session.url, `apply ${unitId} autovacuum watch`, done);
    do {
      const result = await watcher.client.query<{ pid: number; work: string; cancelled: boolean }>(cancelBlockingAutovacuum, [
        ctx.session.backendPid,
      ]);
      for (const row of result.rows) {
        if (row.cancelled)
          ctx.reporter.note(`${unitId}: cancelled autovacuum (${row.work}, pid ${row.pid}), which held up the unit's lock`);
      }
    } while (await pause(watchEveryMs, done));
  } catch (error) {
    // Not allowed to signal autovacuum, or the watch's own connection failed: the unit waits as it would have.
    if (!done.aborted) ctx.reporter.note(`${unitId}: cannot cancel an autovacuum in its way (${(error as Error).message})`);
  } finally {
    await watcher?.close().catch(() => {});
  }
}

/** Waits `ms`; false when `done` comes first. */
async function pause(ms: number, done: AbortSignal): Promise<boolean> {
  if (done.aborted) return false;
  return sleep(ms, true, { signal: done }).catch(() => false);
}
