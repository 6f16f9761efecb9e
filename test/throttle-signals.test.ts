/**
 * The throttle's signals read from a real server (src/exec/throttle.ts, measureAppCost):
 * a session waiting on the batch's row lock counts when it is the application's, not when
 * it is another tenantify session (a second worker of the same backfill waits on the
 * ledger's row until the batch commits; counted, it halved every batch for nothing).
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { connect } from '../src/db/connection.js';
import { measureAppCost } from '../src/exec/throttle.js';
import { dropAfterAll, freshDatabase, until } from './support/db.js';

describe('the throttle’s lock waiters', () => {
  const dropped = dropAfterAll();

  it("count the application's sessions waiting on the batch's rows, not tenantify's own", async () => {
    const db = dropped(await freshDatabase('throttle'));
    const batch = await connect(db.url, 'apply 0001_backfill');
    const worker = await connect(db.url, 'apply 0001_backfill worker');
    const app = new pg.Client({ connectionString: db.url, application_name: 'legacy-app' });
    await app.connect();
    try {
      // Row 1 stands for the ledger's row of the unit, row 2 for a row of the batch.
      await batch.client.query('CREATE TABLE rows_ (id int PRIMARY KEY, n int); INSERT INTO rows_ VALUES (1, 0), (2, 0)');
      await batch.client.query('BEGIN');
      await batch.client.query('UPDATE rows_ SET n = n + 1');
      const waiting = `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`;

      // Another worker of the backfill, waiting on the same row: not the application's wait.
      const workerWrite = worker.client.query('UPDATE rows_ SET n = n + 1 WHERE id = 1');
      await until(db.url, waiting);
      expect((await measureAppCost(batch)).lockWaiters).toBe(0);

      // The application's write to a row of the batch: one waiter.
      const appWrite = app.query('UPDATE rows_ SET n = n + 10 WHERE id = 2');
      await until(db.url, waiting.replace('count(*)::int AS n', '(count(*) - 1)::int AS n'));
      // A transaction reads pg_stat_activity once (the batch's probe runs once per batch): read it afresh.
      await batch.client.query('SELECT pg_stat_clear_snapshot()');
      const cost = await measureAppCost(batch);
      expect(cost.lockWaiters).toBe(1);
      expect(cost.activeSessions).toBe(1);

      await batch.client.query('COMMIT');
      await Promise.all([workerWrite, appWrite]);
      const { rows } = await app.query<{ n: number }>('SELECT n FROM rows_ ORDER BY id');
      expect(rows.map((r) => r.n)).toEqual([2, 11]);
    } finally {
      await app.end();
      await worker.close();
      await batch.close();
    }
  }, 30_000);
});
