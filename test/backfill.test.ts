import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nextSize } from '../src/exec/batched.js';
import { dropAfterAll, freshDatabase, query, until } from './support/db.js';
import { runCli, startCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';

const api = fileURLToPath(new URL('../dist/index.js', import.meta.url));

describe('batch size', () => {
  it('moves toward the target duration, at most doubling or halving', () => {
    expect(nextSize(1000, 100, 300)).toBe(2000);
    expect(nextSize(1000, 250, 300)).toBe(1200);
    expect(nextSize(1000, 3000, 300)).toBe(500);
    expect(nextSize(10, 5000, 300)).toBe(10);
    expect(nextSize(900_000, 1, 300)).toBe(1_000_000);
  });
});

describe('batched backfills', () => {
  // No snapshots (a pg_dump before each unit): none of these tests is about them.
  const dropped = dropAfterAll();
  async function db(setup: string) {
    const d = dropped(await freshDatabase('bf'));
    await query(d.url, setup);
    return d.url;
  }

  it('on an empty table: nothing to do, applied', async () => {
    const url = await db('CREATE TABLE hosts (id bigint PRIMARY KEY, org int);');
    const dir = writePlan({
      'backfills/0001_fill.sql': '-- tenantify:batch hosts key=id size=100\nUPDATE hosts SET org = 1 WHERE id > $1 AND id <= $2;\n',
    });
    const result = await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot', '--json']);
    expect(result.code).toBe(0);
    const [unit] = await query<{ status: string; progress: Record<string, unknown> }>(url, 'SELECT status, progress FROM tenantify.units');
    expect(unit?.status).toBe('applied');
    expect(unit?.progress).toMatchObject({ rowsTotal: 0 });
  });

  it.each([
    ['text', "'k' || lpad(g::text, 6, '0')"],
    ['uuid', 'md5(g::text)::uuid'],
    ['timestamptz', "timestamptz '2020-01-01' + g * interval '1 minute'"],
  ])('walks a %s key in batches, every row once', async (type, expression) => {
    const url = await db(`CREATE TABLE items (k ${type} PRIMARY KEY, done int NOT NULL DEFAULT 0);
      INSERT INTO items (k) SELECT ${expression} FROM generate_series(1, 1234) g;`);
    const dir = writePlan({
      'backfills/0001_fill.sql': `-- tenantify:batch items key=k size=100
UPDATE items SET done = done + 1 WHERE k > $1 AND k <= $2;
-- tenantify:verify every item done once
SELECT k FROM items WHERE done <> 1;
`,
    });
    const result = await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.code).toBe(0);
    const [unit] = await query<{ progress: { rowsDone: number; batches: number } }>(url, 'SELECT progress FROM tenantify.units');
    expect(unit?.progress.rowsDone).toBe(1234);
    expect(unit?.progress.batches).toBeGreaterThan(1);
  });

  it('covers rows inserted during the backfill beyond the starting maximum', async () => {
    const url = await db(
      'CREATE TABLE hosts (id bigint PRIMARY KEY, org int); INSERT INTO hosts (id) SELECT g FROM generate_series(1, 1000) g;',
    );
    const dir = writePlan({
      'backfills/0001_fill.ts': `
import { defineBackfill, sql } from ${JSON.stringify(api)};
let first = true;
export default defineBackfill({
  table: 'hosts', key: 'id', size: 300,
  async batch(db, { from, to }) {
    if (first) {
      first = false;
      // The application keeps writing while the backfill runs.
      await sql\`INSERT INTO hosts (id) SELECT g FROM generate_series(1001, 1500) g\`.execute(db);
    }
    const r = await sql\`UPDATE hosts SET org = 1 WHERE id > \${from}::bigint AND id <= \${to}::bigint\`.execute(db);
    return r.numAffectedRows ?? 0n;
  },
  verify: [{ name: 'every host has an org', sql: 'SELECT id FROM hosts WHERE org IS NULL' }],
});
`,
    });
    const result = await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.code).toBe(0);
    const [n] = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM hosts WHERE org = 1');
    expect(n?.n).toBe(1500);
  });

  it('ends beside an app that inserts faster than it walks: up to the last key at the start, then at a second look', async () => {
    const url = await db(
      'CREATE TABLE hosts (id bigint PRIMARY KEY, org int); INSERT INTO hosts (id) SELECT g FROM generate_series(1, 1000) g;',
    );
    // Every batch, the application inserts more rows above the last key than a batch walks.
    // A guard stops it after 200 batches, so a walk that chases every new key ends too.
    const dir = writePlan({
      'tenantify.config.json': JSON.stringify({ batch: { parallel: 1, throttle: 'off' } }),
      'backfills/0001_fill.ts': `
import { defineBackfill, sql } from ${JSON.stringify(api)};
let batches = 0;
export default defineBackfill({
  table: 'hosts', key: 'id', size: 100,
  async batch(db, { from, to }) {
    if (++batches <= 200) await sql\`INSERT INTO hosts (id) SELECT m + g FROM (SELECT max(id) AS m FROM hosts) x, generate_series(1, 150) g\`.execute(db);
    const r = await sql\`UPDATE hosts SET org = 1 WHERE id > \${from}::bigint AND id <= \${to}::bigint\`.execute(db);
    return r.numAffectedRows ?? 0n;
  },
});
`,
    });
    const result = await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    expect(result.code, result.stderr).toBe(0);
    const [unit] = await query<{ batches: number }>(url, "SELECT (progress->>'batches')::int AS batches FROM tenantify.units");
    expect(unit?.batches).toBeLessThan(200);
    const [rows] = await query<{ before: number; during: number; left: number }>(
      url,
      `SELECT count(*) FILTER (WHERE id <= 1000 AND org = 1)::int AS before,
              count(*) FILTER (WHERE id > 1000 AND org = 1)::int AS during,
              count(*) FILTER (WHERE org IS NULL)::int AS left FROM hosts`,
    );
    // Every row there at the start is done; rows inserted during the first walk are done by the second look; the rest are left.
    expect(rows?.before).toBe(1000);
    expect(rows?.during).toBeGreaterThanOrEqual(150);
    expect(rows?.left).toBeGreaterThan(0);
  });

  it('SIGINT stops after the batch in flight (exit 130), and apply resumes from the cursor', async () => {
    const url = await db(`CREATE TABLE hosts (id bigint PRIMARY KEY, org int, n int NOT NULL DEFAULT 0);
      INSERT INTO hosts (id) SELECT g FROM generate_series(1, 400) g;`);
    // Slow batches: 10 rows each, 100 ms each, one worker so there is one cursor to resume from.
    // No throttle: its pause after each batch would double the walk, and no assertion is about it.
    const dir = writePlan({
      'tenantify.config.json': JSON.stringify({ batch: { targetDuration: '100s', parallel: 1, throttle: 'off' } }),
      'backfills/0001_fill.sql': `-- tenantify:batch hosts key=id size=10
UPDATE hosts SET org = 1, n = n + 1 WHERE id > $1 AND id <= $2 AND pg_sleep(0.01) IS NOT NULL;
-- tenantify:verify every host once
SELECT id FROM hosts WHERE n <> 1;
`,
    });
    const run = startCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    await until(url, "SELECT count(*)::int AS n FROM tenantify.units WHERE (progress->>'rowsDone')::int >= 50");
    const sent = performance.now();
    run.child.kill('SIGINT');
    const stopped = await run.done;
    expect(stopped.code).toBe(130);
    expect(performance.now() - sent).toBeLessThan(3000);
    const [mid] = await query<{ done: number; status: string; updated: number }>(
      url,
      "SELECT (progress->>'rowsDone')::int AS done, status, (SELECT count(*)::int FROM hosts WHERE n = 1) AS updated FROM tenantify.units",
    );
    expect(mid?.status).toBe('failed');
    expect(mid?.done).toBe(mid?.updated);
    expect(mid?.done).toBeLessThan(400);
    const resumed = await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain(`resuming after key ${mid?.done}`);
    const [all] = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM hosts WHERE n = 1 AND org = 1');
    expect(all?.n).toBe(400);
  });

  it('status from another terminal shows the progress of a running backfill', async () => {
    const url = await db(
      'CREATE TABLE hosts (id bigint PRIMARY KEY, org int); INSERT INTO hosts (id) SELECT g FROM generate_series(1, 300) g;',
    );
    const dir = writePlan({
      // No throttle (its pauses would double the walk): the progress shown is the batches'.
      'tenantify.config.json': JSON.stringify({ batch: { targetDuration: '100s', throttle: 'off' } }),
      'backfills/0001_fill.sql':
        '-- tenantify:batch hosts key=id size=10\nUPDATE hosts SET org = 1 WHERE id > $1 AND id <= $2 AND pg_sleep(0.02) IS NOT NULL;\n',
    });
    const run = startCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    let seen: { status: string; progress: { rowsDone: number; rowsTotal: number } | null } | undefined;
    // A status run (a CLI start) only once the ledger shows the backfill under way (or the run has ended: then the loop fails).
    const ended = new AbortController();
    void run.done.then(() => ended.abort());
    await until(
      url,
      "SELECT count(*)::int AS n FROM tenantify.units WHERE status = 'running' AND (progress->>'rowsDone')::int > 0",
      ended.signal,
    );
    for (let i = 0; i < 100 && !seen; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const status = await runCli(['status', '-d', url, '--dir', dir, '--json']);
      const unit = (JSON.parse(status.stdout) as { units: { status: string; progress: { rowsDone: number; rowsTotal: number } | null }[] })
        .units[0];
      if (unit?.status === 'running' && (unit.progress?.rowsDone ?? 0) > 0) seen = unit;
    }
    expect(seen?.progress?.rowsTotal).toBe(300);
    expect(seen?.progress?.rowsDone).toBeGreaterThan(0);
    expect((await run.done).code).toBe(0);
  });
});

describe('parallel workers', () => {
  const dropped = dropAfterAll();

  it('walk disjoint key ranges on their own connections, every row once, and resume after a kill', async () => {
    const d = dropped(await freshDatabase('par'));
    await query(
      d.url,
      `CREATE TABLE hosts (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0);
      INSERT INTO hosts (id) SELECT g * 7 FROM generate_series(1, 6000) g;`,
    );
    const dir = writePlan({
      // No throttle: the workers' walks, not their pauses (test/throttle-signals.test.ts and bench/ are about those).
      'tenantify.config.json': JSON.stringify({ batch: { targetDuration: '200ms', throttle: 'off' } }),
      'backfills/0001_fill.sql': `-- tenantify:batch hosts key=id size=100
UPDATE hosts SET n = n + 1 WHERE id > $1 AND id <= $2 AND pg_sleep(0.001) IS NOT NULL;
-- tenantify:verify every host once
SELECT id FROM hosts WHERE n <> 1;
`,
    });
    const run = startCli(['apply', '-d', d.url, '--dir', dir, '--parallel', '3', '--no-snapshot']);
    let workers = 0;
    for (let i = 0; i < 200 && workers < 3; i++) {
      const [w] = await query<{ n: number }>(
        d.url,
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'tenantify apply%' AND datname = current_database()",
      );
      workers = Math.max(workers, w?.n ?? 0);
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(workers).toBe(3);
    await new Promise((r) => setTimeout(r, 300));
    run.child.kill('SIGKILL');
    await run.done;
    const [mid] = await query<{ segments: { cursor: string }[]; done: number }>(
      d.url,
      "SELECT progress->'segments' AS segments, (progress->>'rowsDone')::int AS done FROM tenantify.units",
    );
    expect(mid?.segments).toHaveLength(3);
    const [updated] = await query<{ n: number }>(d.url, 'SELECT count(*)::int AS n FROM hosts WHERE n = 1');
    expect(mid?.done).toBe(updated?.n);
    // The killed run's sessions end within about a second (client_connection_check_interval); until then its lock holds.
    let resumed = await runCli(['apply', '-d', d.url, '--dir', dir, '--parallel', '2', '--no-snapshot']);
    for (let i = 0; i < 20 && resumed.code === 4; i++) {
      await new Promise((r) => setTimeout(r, 250));
      resumed = await runCli(['apply', '-d', d.url, '--dir', dir, '--parallel', '2', '--no-snapshot']);
    }
    expect(resumed.stderr).not.toMatch(/^error/m);
    expect(resumed.code).toBe(0);
    const [all] = await query<{ once: number; other: number }>(
      d.url,
      'SELECT count(*) FILTER (WHERE n = 1)::int AS once, count(*) FILTER (WHERE n <> 1)::int AS other FROM hosts',
    );
    expect(all).toEqual({ once: 6000, other: 0 });
  });
});
