/**
 * An autovacuum worker holding the table a unit alters: PostgreSQL cancels it only after
 * deadlock_timeout (1 s), longer than the unit's lock timeout, so unless tenantify cancels
 * it after a lock timeout (src/exec/autovacuum.ts) every try of the unit times out. Its own server: autovacuum's
 * round (autovacuum_naptime) is shortened to one second there, which the suite's shared
 * server must not have.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../src/db/throwaway.js';
import { runCli } from './support/cli.js';
import { query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('an autovacuum in a unit’s way', () => {
  let server: ThrowawayPostgres;
  beforeAll(async () => {
    server = await startThrowawayPostgres({ prefer: 'local' });
    await query(server.url, "ALTER SYSTEM SET autovacuum_naptime = '1s'");
    await query(server.url, 'SELECT pg_reload_conf()');
  }, 120_000);
  afterAll(async () => {
    await server?.close();
  });

  it("is cancelled after the unit's first lock timeout, and its retry gets the lock", async () => {
    const url = server.url;
    // Autovacuum comes to this table at once and crawls through it (a cost limit of 1 and a
    // delay of 100 ms: a page at a time), holding SHARE UPDATE EXCLUSIVE for as long.
    await query(
      url,
      `CREATE TABLE accounts (id int PRIMARY KEY, owner int)
         WITH (autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
               autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1, autovacuum_analyze_threshold = 1000000000);
       INSERT INTO accounts SELECT g, g FROM generate_series(1, 20000) g;
       DELETE FROM accounts WHERE id % 2 = 0`,
    );
    for (let waited = 0; ; waited += 100) {
      const rows = await query<{ n: number }>(
        url,
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND query LIKE '%accounts%'",
      );
      if ((rows[0]?.n ?? 0) > 0) break;
      if (waited > 60_000) throw new Error('autovacuum never came to the table');
      await sleep(100);
    }
    const dir = writePlan({
      'migrations/0001_owner_check.sql':
        '-- tenantify:lock-timeout 300ms\n-- tenantify:retries 1\n-- tenantify:snapshot none\n' +
        'ALTER TABLE accounts ADD CONSTRAINT accounts_owner_not_null CHECK (owner IS NOT NULL) NOT VALID;\n',
    });

    const result = await runCli(['apply', '-d', url, '--dir', dir, '--json']);

    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/cancelled autovacuum \(VACUUM public\.accounts/);
    const constraint = await query(url, "SELECT 1 FROM pg_constraint WHERE conname = 'accounts_owner_not_null'");
    expect(constraint).toHaveLength(1);
  }, 120_000);
});
