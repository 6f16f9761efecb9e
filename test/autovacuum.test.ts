/**
 * An autovacuum worker holding the table a unit alters: PostgreSQL cancels it only after
 * deadlock_timeout (1 s by default), longer than the unit's lock timeout, so unless the
 * session's deadlock_timeout is shorter (a superuser's) or tenantify cancels it after a lock
 * timeout (src/exec/autovacuum.ts) every try of the unit times out. Its own server: autovacuum's
 * round (autovacuum_naptime) is shortened to one second there, which the suite's shared
 * server must not have.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autovacuumYieldMs, connect } from '../src/db/connection.js';
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

  /** A table autovacuum comes to at once and crawls through (a cost limit of 1, a delay of 100 ms: a page at a time), holding SHARE UPDATE EXCLUSIVE for as long; once it is there. */
  async function tableUnderAutovacuum(url: string, table: string): Promise<void> {
    await query(
      url,
      `CREATE TABLE ${table} (id int PRIMARY KEY, owner int)
         WITH (autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
               autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1, autovacuum_analyze_threshold = 1000000000);
       INSERT INTO ${table} SELECT g, g FROM generate_series(1, 20000) g;
       DELETE FROM ${table} WHERE id % 2 = 0`,
    );
    for (let waited = 0; ; waited += 100) {
      const rows = await query<{ n: number }>(
        url,
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND query LIKE '%${table}%'`,
      );
      if ((rows[0]?.n ?? 0) > 0) return;
      if (waited > 60_000) throw new Error('autovacuum never came to the table');
      await sleep(100);
    }
  }

  const unit = (table: string, retries: number): string =>
    `-- tenantify:lock-timeout 300ms\n-- tenantify:retries ${retries}\n-- tenantify:snapshot none\n` +
    `ALTER TABLE ${table} ADD CONSTRAINT ${table}_owner_not_null CHECK (owner IS NOT NULL) NOT VALID;\n`;

  it('run by a superuser, is cancelled by PostgreSQL 100 ms into the wait: the first try gets the lock', async () => {
    const url = server.url;
    await tableUnderAutovacuum(url, 'accounts');
    // No retry: a try that waited out its 300 ms lock timeout would fail the unit.
    const result = await runCli([
      'apply',
      '-d',
      url,
      '--dir',
      writePlan({ 'migrations/0001_owner_check.sql': unit('accounts', 0) }),
      '--json',
    ]);

    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(/lock timeout/);
    expect(await query(url, "SELECT 1 FROM pg_constraint WHERE conname = 'accounts_owner_not_null'")).toHaveLength(1);
  }, 120_000);

  it("a superuser's sessions wait 100 ms before their deadlock check; another role's keep the server's", async () => {
    const role = 'not_superuser';
    await query(server.url, `CREATE ROLE ${role} LOGIN`);
    const asRole = new URL(server.url);
    asRole.username = role;
    asRole.password = '';
    const setting = async (url: string): Promise<string> => {
      const session = await connect(url, 'test');
      try {
        return (await session.client.query<{ deadlock_timeout: string }>('SHOW deadlock_timeout')).rows[0]?.deadlock_timeout ?? '';
      } finally {
        await session.close();
      }
    };
    expect(await setting(server.url)).toBe(`${autovacuumYieldMs}ms`);
    // What a plain client of the server gets: the server's own value.
    const [plain] = await query<{ deadlock_timeout: string }>(server.url, 'SHOW deadlock_timeout');
    expect(await setting(asRole.toString())).toBe(plain?.deadlock_timeout);
  }, 120_000);
});
