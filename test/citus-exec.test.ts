/**
 * The executor on a Citus coordinator (a throwaway cluster of a coordinator and two workers):
 * a plan over a distributed table and a reference table applies, verifies, backfills in
 * batches, builds an index CONCURRENTLY, holds its run lock, and goes back from its
 * snapshots to exactly the rows it had, still distributed. What cannot work on Citus is
 * refused before anything runs.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { contentFingerprint, holdGate, query, until } from './support/db.js';
import { runCli, startCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';
import { startThrowawayCitus, type ThrowawayCitus } from '../src/db/throwaway.js';
import { describeWithCitus } from './support/citus.js';

// A reference table, a table distributed by org_id that references it, and a colocated one that references that (a foreign key into the restored table).
const legacy = `
  CREATE TABLE plans (code text PRIMARY KEY, name text NOT NULL);
  SELECT create_reference_table('plans');
  INSERT INTO plans VALUES ('free', 'Free'), ('pro', 'Pro');
  CREATE TABLE accounts (org_id int NOT NULL, id bigint NOT NULL, name text NOT NULL, plan text REFERENCES plans (code), PRIMARY KEY (org_id, id));
  SELECT create_distributed_table('accounts', 'org_id');
  INSERT INTO accounts SELECT g % 7, g, 'account ' || g, CASE WHEN g % 2 = 0 THEN 'pro' ELSE 'free' END FROM generate_series(1, 500) g;
  CREATE TABLE notes (org_id int NOT NULL, id bigint NOT NULL, account_id bigint NOT NULL, body text, PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, account_id) REFERENCES accounts (org_id, id));
  SELECT create_distributed_table('notes', 'org_id', colocate_with => 'accounts');
  INSERT INTO notes SELECT a.org_id, a.id, a.id, 'note' FROM accounts a WHERE a.org_id IN (0, 1, 2);`;

const plan = {
  'migrations/0001_status.sql': `ALTER TABLE accounts ADD COLUMN status text;
-- tenantify:verify accounts has a status column
SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'status');
`,
  'rollbacks/0001_status.sql': 'ALTER TABLE accounts DROP COLUMN status;\n',
  // No rollback file: its snapshot is the only way back.
  'backfills/0002_cleanup.sql': `UPDATE accounts SET name = upper(name) WHERE org_id = 3;
DELETE FROM accounts WHERE org_id = 5;
-- tenantify:verify nothing is left of org 5
SELECT id FROM accounts WHERE org_id = 5;
`,
  'backfills/0003_status.sql': `-- tenantify:batch accounts key=id size=100
UPDATE accounts SET status = CASE WHEN plan = 'pro' THEN 'paying' ELSE 'trial' END WHERE id > $1 AND id <= $2 AND status IS NULL;
-- tenantify:verify every account has a status
SELECT id FROM accounts WHERE status IS NULL;
`,
  'rollbacks/0003_status.sql': 'UPDATE accounts SET status = NULL;\n',
  'migrations/0004_status_index.sql': '-- tenantify:transaction off\nCREATE INDEX CONCURRENTLY accounts_status_idx ON accounts (status);\n',
  'rollbacks/0004_status_index.sql': '-- tenantify:transaction off\nDROP INDEX CONCURRENTLY accounts_status_idx;\n',
};

describeWithCitus('the executor on a Citus coordinator', () => {
  let cluster: ThrowawayCitus;
  let databases = 0;
  beforeAll(async () => {
    // 6 shards, not the 4 of the cluster rehearse --citus starts: a copy of this coordinator must keep them.
    cluster = await startThrowawayCitus({ prefer: 'local', workers: 2, shardCount: 6 });
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
  });

  async function database(): Promise<string> {
    const url = await cluster.createDatabase(`citus_exec_${++databases}`);
    await query(url, legacy);
    return url;
  }

  const one = async <T extends Record<string, unknown>>(url: string, sql: string): Promise<T> => (await query<T>(url, sql))[0] as T;
  const layout = (url: string) =>
    query<{ name: string; method: string; shards: number }>(
      url,
      `SELECT logicalrelid::text AS name, partmethod::text AS method, (SELECT count(*)::int FROM pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid) AS shards
      FROM pg_dist_partition p ORDER BY 1`,
    );
  // The legacy columns of every account, in one checksum.
  const accountRows = (url: string) =>
    one<{ rows: string; n: number }>(
      url,
      "SELECT md5(string_agg(format('%s|%s|%s|%s', org_id, id, name, plan), ',' ORDER BY org_id, id)) AS rows, count(*)::int AS n FROM accounts",
    );
  const statuses = (url: string) => query<{ id: string; status: string }>(url, 'SELECT id, status FROM tenantify.units ORDER BY id');
  const distributed = [
    { name: 'accounts', method: 'h', shards: 6 },
    { name: 'notes', method: 'h', shards: 6 },
    { name: 'plans', method: 'n', shards: 1 },
  ];

  it('applies, verifies, backfills in batches, indexes CONCURRENTLY, and rolls back from snapshots to exactly the rows it had, still distributed', async () => {
    const url = await database();
    const dir = writePlan(plan);
    const before = await contentFingerprint(url);
    expect(Object.keys(before)).toEqual(['public.accounts', 'public.notes', 'public.plans']);
    const legacyAccounts = await accountRows(url);
    expect(legacyAccounts.n).toBe(500);

    const applied = await runCli(['apply', '-d', url, '--dir', dir, '--json']);
    expect(applied.stderr).not.toMatch(/error/i);
    expect(applied.code).toBe(0);
    expect(await statuses(url)).toEqual(
      ['0001_status', '0002_cleanup', '0003_status', '0004_status_index'].map((id) => ({ id, status: 'applied' })),
    );
    expect(
      await one(
        url,
        "SELECT count(*)::int AS n, count(*) FILTER (WHERE status = 'paying')::int AS paying, count(*) FILTER (WHERE status IS NULL)::int AS missing FROM accounts",
      ),
    ).toEqual({ n: 429, paying: 215, missing: 0 });
    // The batches' cursor and rows are in the ledger, each committed with its batch.
    const progress = await one<{ rows: number; batches: number }>(
      url,
      "SELECT (progress->>'rowsDone')::int AS rows, (progress->>'batches')::int AS batches FROM tenantify.units WHERE id = '0003_status'",
    );
    expect(progress.rows).toBe(429);
    // Batches start at 100 rows and at most double: 100 + 200 < 429, so three at least, whatever the workers.
    expect(progress.batches).toBeGreaterThanOrEqual(3);
    // The index exists on every shard, valid.
    const indexes = await one<{ n: number }>(
      url,
      `SELECT sum(result::int)::int AS n FROM run_command_on_shards('accounts',
      $$SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = '%s'::regclass AND c.relname LIKE 'accounts_status_idx%%' AND i.indisvalid$$)`,
    );
    expect(indexes.n).toBe(6);
    // The snapshots hold every shard's rows, not the coordinator's empty shell.
    const snapshots = await query<{ id: string; tables: string[]; kind: string }>(
      url,
      "SELECT id, snapshot->'tables' AS tables, snapshot->'citus'->'public.accounts'->>'kind' AS kind FROM tenantify.units WHERE snapshot ? 'file' ORDER BY id",
    );
    expect(snapshots).toEqual([
      { id: '0002_cleanup', tables: ['public.accounts'], kind: 'distributed' },
      { id: '0003_status', tables: ['public.accounts'], kind: 'distributed' },
    ]);

    const verified = await runCli(['verify', '-d', url, '--dir', dir, '--json']);
    expect(verified.code).toBe(0);
    expect((JSON.parse(verified.stdout) as { checks: { unit: string; ok: boolean }[] }).checks.map((c) => [c.unit, c.ok])).toEqual([
      ['0001_status', true],
      ['0002_cleanup', true],
      ['0003_status', true],
    ]);

    // `snapshots restore`: the rows before the batched backfill, in place.
    const restored = await runCli(['snapshots', 'restore', '0003_status', '-d', url, '--dir', dir, '--yes']);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    expect(
      await one(
        url,
        'SELECT count(*)::int AS n, count(status)::int AS with_status, count(*) FILTER (WHERE org_id = 5)::int AS org5 FROM accounts',
      ),
    ).toEqual({ n: 429, with_status: 0, org5: 0 });
    expect(await layout(url)).toEqual(distributed);

    const rolledBack = await runCli(['rollback', '-d', url, '--dir', dir, '--steps', '3', '--from-snapshot', '--yes']);
    expect(rolledBack.code).toBe(0);
    expect(await statuses(url)).toEqual([
      { id: '0001_status', status: 'applied' },
      { id: '0002_cleanup', status: 'rolled_back' },
      { id: '0003_status', status: 'rolled_back' },
      { id: '0004_status_index', status: 'rolled_back' },
    ]);
    // Exactly the rows before 0002 (org 5 back, org 3's names as they were), in a table still distributed over its shards.
    const { 'public.accounts': _accounts, ...others } = await contentFingerprint(url);
    expect(others).toEqual({ 'public.notes': before['public.notes'], 'public.plans': before['public.plans'] });
    // 0001 is still applied: the accounts are the legacy rows, with an empty status column.
    expect(await accountRows(url)).toEqual(legacyAccounts);
    expect(await one(url, 'SELECT count(status)::int AS n FROM accounts')).toEqual({ n: 0 });
    expect(await layout(url)).toEqual(distributed);
    // The foreign key into accounts was dropped for the restore and made again: it still holds.
    expect(await one(url, "SELECT count(*)::int AS n FROM pg_constraint WHERE conrelid = 'notes'::regclass AND contype = 'f'")).toEqual({
      n: 1,
    });
    const events = await query<{ event: string }>(
      url,
      "SELECT event FROM tenantify.events WHERE unit_id IN ('0002_cleanup', '0003_status') AND event LIKE 'snapshot%' ORDER BY id",
    );
    expect(events.map((e) => e.event)).toEqual(['snapshot_taken', 'snapshot_taken', 'snapshot_restored']);
  });

  it('refuses `snapshot full` before anything runs: exit 2 naming the file, line and directive; the database unchanged', async () => {
    const url = await database();
    const dir = writePlan({
      'migrations/0001_add.sql': 'ALTER TABLE accounts ADD COLUMN status text;\n',
      'backfills/0002_full.sql': '-- tenantify:lock-timeout 2s\n-- tenantify:snapshot full\nUPDATE accounts SET name = upper(name);\n',
    });
    const before = await contentFingerprint(url);
    const result = await runCli(['apply', '-d', url, '--dir', dir]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('backfills/0002_full.sql:2: `-- tenantify:snapshot full` cannot work on a Citus coordinator');
    expect(result.stderr).toMatch(/cannot put the shards back/);
    expect(result.stderr).toMatch(/hint: name the tables instead/);
    expect(await contentFingerprint(url)).toEqual(before);
    expect(
      await one(
        url,
        "SELECT to_regnamespace('tenantify') IS NULL AS none, (SELECT count(*)::int FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'status') AS status",
      ),
    ).toEqual({ none: true, status: 0 });
    expect(await layout(url)).toEqual(distributed);
    // Without snapshots, the directive does not matter.
    expect((await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot'])).code).toBe(0);
  });

  it('refuses to restore a snapshot into a table whose columns changed: exit 2, nothing restored', async () => {
    const url = await database();
    const dir = writePlan({ 'migrations/0001_drop_plan.sql': 'ALTER TABLE accounts DROP COLUMN plan;\n' });
    expect((await runCli(['apply', '-d', url, '--dir', dir])).code).toBe(0);
    const applied = await contentFingerprint(url);
    const result = await runCli(['rollback', '-d', url, '--dir', dir, '--from-snapshot', '--yes']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('the snapshot of 0001_drop_plan cannot be restored on this Citus coordinator');
    expect(result.stderr).toContain(
      'public.accounts had columns (org_id integer, id bigint, name text, plan text), now (org_id integer, id bigint, name text)',
    );
    expect(await contentFingerprint(url)).toEqual(applied);
    expect(await statuses(url)).toEqual([{ id: '0001_drop_plan', status: 'applied' }]);
    expect(await layout(url)).toEqual(distributed);
  });

  it('holds the run lock on the coordinator: a second apply is refused with exit 4', async () => {
    const url = await database();
    const gate = await holdGate(url);
    const dir = writePlan({ 'backfills/0001_gated.sql': `${gate.sql}\nUPDATE accounts SET name = name || '!' WHERE org_id = 1;\n` });
    // No snapshots here and in the tests below (none is about them): each would be a pg_dump of the shards' rows.
    const first = startCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    await gate.reached(first.done);
    const second = await runCli(['apply', '-d', url, '--dir', dir]);
    await gate.open();
    expect(second.code).toBe(4);
    expect(second.stderr).toMatch(/another run holds the lock/i);
    expect((await first.done).code).toBe(0);
    expect(await one(url, "SELECT count(*) FILTER (WHERE name LIKE '%!')::int AS changed FROM accounts")).toEqual({ changed: 72 });
    const runs = await query<{ command: string; outcome: string }>(url, 'SELECT command, outcome FROM tenantify.runs ORDER BY id');
    expect(runs).toEqual([{ command: 'apply', outcome: 'done' }]);
  });

  it("holds a unit's lock timeout on the workers too: a DDL behind a shard's lock fails with exit 1 instead of waiting", async () => {
    const url = await database();
    const [shard] = await query<{ name: string; port: number }>(
      url,
      "SELECT shard_name AS name, nodeport AS port FROM citus_shards WHERE table_name = 'accounts'::regclass ORDER BY shardid LIMIT 1",
    );
    const worker = new URL(url);
    worker.port = String(shard?.port);
    // An application transaction on a worker, reading one shard, that does not end while the unit runs
    // (were the lock timeout to stay on the coordinator, the statement timeout would end the wait, with another error).
    const holder = new pg.Client({ connectionString: worker.toString() });
    await holder.connect();
    await holder.query(`BEGIN; SET LOCAL citus.enable_manual_changes_to_shards = on; LOCK ${shard?.name} IN ACCESS SHARE MODE`);
    try {
      const dir = writePlan({
        'migrations/0001_column.sql':
          '-- tenantify:lock-timeout 1s\n-- tenantify:retries 0\n-- tenantify:statement-timeout 20s\nALTER TABLE accounts ADD COLUMN status text;\n',
      });
      const result = await runCli(['apply', '-d', url, '--dir', dir]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('canceling statement due to lock timeout (SQLSTATE 55P03)');
      expect(result.stderr).toContain(`while executing command on 127.0.0.1:${shard?.port}`);
    } finally {
      await holder.end();
    }
    expect(await statuses(url)).toEqual([{ id: '0001_column', status: 'failed' }]);
    expect(
      await one(url, "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'status'"),
    ).toEqual({ n: 0 });
  });

  it("sizes a batched backfill of a distributed table from its shards' statistics, not by counting every shard's rows", async () => {
    const url = await database();
    // The shards' statistics say 400,000 rows each, 2,400,000 in all (over a million: an
    // estimate is used); the coordinator's shell says 0. A count would find 500.
    await query(url, 'ALTER TABLE accounts SET (autovacuum_enabled = false)');
    await query(url, "SELECT run_command_on_shards('accounts', $$UPDATE pg_class SET reltuples = 400000 WHERE oid = '%s'::regclass$$)");
    expect(await one(url, "SELECT greatest(reltuples, 0)::int AS n FROM pg_class WHERE oid = 'accounts'::regclass")).toEqual({ n: 0 });
    const dir = writePlan({
      'migrations/0001_touched.sql': 'ALTER TABLE accounts ADD COLUMN touched int;\n',
      'backfills/0002_touch.sql':
        '-- tenantify:batch accounts key=id size=100\nUPDATE accounts SET touched = 1 WHERE id > $1 AND id <= $2;\n',
    });
    const applied = await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    expect(applied.stderr).not.toMatch(/error/i);
    expect(applied.code).toBe(0);
    expect(
      await one(
        url,
        "SELECT (progress->>'rowsTotal')::int AS total, (progress->>'rowsDone')::int AS done FROM tenantify.units WHERE id = '0002_touch'",
      ),
    ).toEqual({
      total: 2_400_000,
      done: 500,
    });
    expect(await one(url, 'SELECT count(*)::int AS n FROM accounts WHERE touched = 1')).toEqual({ n: 500 });
  });

  it('runs a batched backfill of a distributed table over one connection per worker, and the next unit with Citus’s default again', async () => {
    const url = await database();
    // Each batch records the pool size its session ran with (evaluated on the coordinator); the next unit records the session's setting after the walk.
    const dir = writePlan({
      'migrations/0001_pool.sql': 'ALTER TABLE accounts ADD COLUMN pool int;\n',
      'backfills/0002_pool.sql':
        "-- tenantify:batch accounts key=id size=100\nUPDATE accounts SET pool = current_setting('citus.max_adaptive_executor_pool_size')::int WHERE id > $1 AND id <= $2;\n",
      'migrations/0003_after.sql':
        "CREATE TABLE pool_after AS SELECT current_setting('citus.max_adaptive_executor_pool_size')::int AS pool;\n",
    });
    const applied = await runCli(['apply', '-d', url, '--dir', dir, '--parallel', '2', '--no-snapshot']);
    expect(applied.code).toBe(0);
    expect(await query(url, 'SELECT pool, count(*)::int AS n FROM accounts GROUP BY pool')).toEqual([{ pool: 1, n: 500 }]);
    const defaultPool = await one<{ pool: number }>(url, "SELECT current_setting('citus.max_adaptive_executor_pool_size')::int AS pool");
    expect(defaultPool.pool).toBeGreaterThan(1);
    expect(await one(url, 'SELECT pool FROM pool_after')).toEqual(defaultPool);
  });

  it('resumes a batched backfill killed half-way at the next batch: every row of every shard updated exactly once', async () => {
    const url = await database();
    await query(url, 'ALTER TABLE accounts ADD COLUMN touched int NOT NULL DEFAULT 0');
    const dir = writePlan({
      // Batches of 10 rows (the smallest), 50 ms apart: the kill lands half-way. No throttle: its
      // duty-cycle pause on top would only slow the resumed walk (nothing here is about yielding).
      'tenantify.config.json': JSON.stringify({ batch: { targetDuration: '1ms', pause: '50ms', parallel: 1, throttle: 'off' } }),
      'backfills/0001_touch.sql':
        '-- tenantify:batch accounts key=id size=10\nUPDATE accounts SET touched = touched + 1 WHERE id > $1 AND id <= $2;\n',
    });
    const first = startCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    await until(url, "SELECT count(*)::int AS n FROM tenantify.units WHERE id = '0001_touch' AND (progress->>'batches')::int >= 3");
    first.child.kill('SIGKILL');
    await first.done;
    expect(await one(url, 'SELECT status FROM tenantify.units')).toEqual({ status: 'running' });
    const done = await one<{ n: number }>(url, 'SELECT count(*)::int AS n FROM accounts WHERE touched = 1');
    expect(done.n).toBeGreaterThan(0);
    expect(done.n).toBeLessThan(500);
    const resumed = await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/0001_touch: resuming after key \d+ \(\d+ rows done\)/);
    expect(await one(url, 'SELECT min(touched)::int AS min, max(touched)::int AS max, count(*)::int AS n FROM accounts')).toEqual({
      min: 1,
      max: 1,
      n: 500,
    });
    expect(await statuses(url)).toEqual([{ id: '0001_touch', status: 'applied' }]);
  });

  it('rehearse --citus copies this coordinator with its layout and rehearses a plan that distributes a table; without --citus, exit 2', async () => {
    const url = await database();
    await query(
      url,
      "CREATE TABLE events (org_id int NOT NULL, id bigint NOT NULL, what text, PRIMARY KEY (org_id, id)); INSERT INTO events SELECT g % 7, g, 'event' FROM generate_series(1, 300) g",
    );
    const dir = writePlan({
      'migrations/0001_distribute_events.sql': `SELECT create_distributed_table('events', 'org_id', colocate_with => 'accounts');
-- tenantify:verify events, accounts and notes are colocated in 6 shards, and plans is a reference table, as in the source
SELECT 1 WHERE (SELECT count(DISTINCT colocationid) FROM pg_dist_partition WHERE logicalrelid IN ('accounts'::regclass, 'notes'::regclass, 'events'::regclass)) <> 1
   OR (SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'notes'::regclass) <> 6
   OR NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'plans'::regclass AND repmodel = 't');
`,
      'rollbacks/0001_distribute_events.sql': "SELECT undistribute_table('events');\n",
    });
    const before = await contentFingerprint(url);
    const env = { TENANTIFY_REHEARSE_SERVER_URL: '' };

    const plain = await runCli(['rehearse', '-d', url, '--dir', dir], { env });
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain('the source is a Citus coordinator (3 Citus tables): a single throwaway PostgreSQL cannot hold it');
    expect(plain.stderr).toContain('hint: rehearse it with --citus');

    const result = await runCli(['rehearse', '--citus', '--workers', '1', '-d', url, '--dir', dir, '--json'], { env });
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout) as { server: string; steps: { name: string; ok: boolean; details: string[] }[] };
    expect(doc.server).toBe('citus');
    expect(doc.steps.map((s) => [s.name, s.ok])).toEqual([
      ['load', true],
      ['apply', true],
      ['verify', true],
      ['rollback', true],
      ['compare with the source', true],
      ['apply again', true],
      ['verify again', true],
    ]);
    expect(doc.steps[0]?.details).toEqual(['4 tables and sequences; 3 Citus tables placed as in the source']);
    // The source was only read.
    expect(await contentFingerprint(url)).toEqual(before);
    expect(await layout(url)).toEqual(distributed);
    expect(await one(url, "SELECT to_regnamespace('tenantify') IS NULL AS none")).toEqual({ none: true });
  });
});
