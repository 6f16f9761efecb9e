/**
 * The default lock timeout: a unit with no lock-timeout anywhere, queued behind a long
 * transaction, must not hold up the application's writes behind its lock request.
 * Measured as a property (no write waits as long as the long transaction), not a benchmark.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runCli, startCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  return c;
}

describe('the default lock timeout', () => {
  const dropped = dropAfterAll();

  it('with no directive, application writes do not queue behind a unit waiting on a long transaction', async () => {
    const { url } = dropped(await freshDatabase('lockdef'));
    await query(
      url,
      'CREATE TABLE accounts (id int PRIMARY KEY, n int NOT NULL DEFAULT 0); INSERT INTO accounts (id) SELECT generate_series(1, 10)',
    );
    const dir = writePlan({ 'migrations/0001_add_plan.sql': 'ALTER TABLE accounts ADD COLUMN plan text;\n' });

    // A report query's transaction holds ACCESS SHARE on the table.
    const report = await client(url);
    await report.query('BEGIN; SELECT count(*) FROM accounts');

    // The application: a stream of small writes, each timed.
    const app = await client(url);
    const waits: number[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const start = performance.now();
        await app.query('UPDATE accounts SET n = n + 1 WHERE id = $1', [(i % 10) + 1]);
        waits.push(performance.now() - start);
        await sleep(20);
      }
    })();

    const apply = startCli(['apply', '-d', url, '--dir', dir]);
    // Once the unit waits for its lock, the report goes on for 2 s more.
    const watcher = await client(url);
    for (let seen = false; !seen;) {
      const rows = await watcher.query(
        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%ALTER TABLE accounts%'",
      );
      seen = rows.rowCount !== null && rows.rowCount > 0;
      if (!seen) await sleep(10);
    }
    await sleep(2000);
    await report.query('COMMIT');
    const result = await apply.done;
    writing = false;
    await writer;
    await Promise.all([report.end(), app.end(), watcher.end()]);

    // Without a lock timeout the worst write waits the 2 s the report still ran; with the default, about 500 ms.
    expect(waits.length).toBeGreaterThan(20);
    expect(Math.max(...waits)).toBeLessThan(1200);
    expect(result.code, result.stderr).toBe(0);
    const retries = await query<{ n: number }>(url, "SELECT count(*)::int AS n FROM tenantify.events WHERE event = 'retry'");
    expect(retries[0]?.n).toBeGreaterThan(0);
    expect(
      await query(url, "SELECT 1 FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'plan'"),
    ).toHaveLength(1);
  }, 30_000);

  it("plan shows the effective lock timeout: the default, the config's, a directive's, or none", async () => {
    const dir = writePlan({
      'tenantify.config.json': '{ "retries": 2 }\n',
      'migrations/0001_a.sql': 'CREATE TABLE a (id int);\n',
      'migrations/0002_b.sql': '-- tenantify:lock-timeout none\nCREATE TABLE b (id int);\n',
      'migrations/0003_c.sql': '-- tenantify:lock-timeout 2s\n-- tenantify:retries 0\nCREATE TABLE c (id int);\n',
    });
    const result = await runCli(['plan', '--dir', dir, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const doc = JSON.parse(result.stdout) as { units: { id: string; lockTimeoutMs: number | null; retries: number }[] };
    expect(doc.units.map((u) => [u.id, u.lockTimeoutMs, u.retries])).toEqual([
      ['0001_a', 500, 2],
      ['0002_b', null, 2],
      ['0003_c', 2000, 0],
    ]);
    const table = await runCli(['plan', '--dir', dir]);
    expect(table.stdout).toMatch(/0001_a.*500ms, 2 retries/);
    expect(table.stdout).toMatch(/0002_b.*no limit/);
    expect(table.stdout).toMatch(/0003_c.*│ 2s /);
  });
});
