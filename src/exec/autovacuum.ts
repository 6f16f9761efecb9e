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
 * So a superuser's sessions run with deadlock_timeout = 20 ms (db/connection.ts): PostgreSQL
 * itself cancels the autovacuum 20 ms into the wait, and the unit's first try gets its lock
 * (at 100 ms, TPC-B's four clients queued behind the check's ALTER for 100 ms each, and the
 * next few of each client's scheduled transactions ran late: 16 of its slowest 1%).
 * (It also makes tenantify's session, not the application's, the one a deadlock between them
 * usually cancels: the unit retries, the app sees no error.) For other roles, and as a fallback,
 * after a lock timeout, before the next try, the unit's own session cancels the
 * database's autovacuum workers: what PostgreSQL itself would have done had the unit waited
 * longer. Never one that prevents wraparound (PostgreSQL does not cancel those either).
 * Autovacuum comes back to its tables on its next round. The unit's session does it, so that
 * no connection is opened beyond the run's budget; which table the lock wait was on is not
 * known then, so every such worker of the database is cancelled, each named in a note.
 * Cancelling autovacuum takes a superuser before PostgreSQL 18 (pg_signal_backend does not
 * reach autovacuum workers; pg_signal_autovacuum_worker does from 18); without, a note says
 * so, and the unit retries as before.
 */
import type { ExecContext } from './context.js';

/** The database's autovacuum workers (not anti-wraparound), each cancelled. */
const cancelAutovacuumSql = `
  SELECT a.pid, regexp_replace(a.query, '^autovacuum: ', '') AS work, pg_cancel_backend(a.pid) AS cancelled
    FROM pg_stat_activity a
   WHERE a.datname = current_database()
     AND a.backend_type = 'autovacuum worker'
     AND a.query NOT LIKE '%(to prevent wraparound)%'`;

/** After a unit's lock timeout: cancels the autovacuum workers that may have held it up. */
export async function cancelAutovacuum(ctx: ExecContext, unitId: string): Promise<void> {
  try {
    const result = await ctx.session.client.query<{ pid: number; work: string; cancelled: boolean }>(cancelAutovacuumSql);
    for (const row of result.rows) {
      if (row.cancelled)
        ctx.reporter.note(`${unitId}: cancelled autovacuum (${row.work}, pid ${row.pid}), which may hold up the unit's lock`);
    }
  } catch (error) {
    ctx.reporter.note(`${unitId}: cannot cancel an autovacuum that may be in its way (${(error as Error).message})`);
  }
}
