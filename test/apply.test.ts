import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { contentFingerprint, dropAfterAll, freshDatabase, holdGate, query, until } from './support/db.js';
import { runCli, startCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';
import { ledgerUnits } from './support/ledger.js';

const legacy = `
  CREATE TABLE users (id serial PRIMARY KEY, email text);
  INSERT INTO users (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 3000) g;
  INSERT INTO users (email) VALUES (NULL), ('user1@example.com');`;

const plan = {
  'migrations/0001_create_organizations.sql': `-- tenantify:lock-timeout 2s
CREATE TABLE organizations (id bigint PRIMARY KEY, name text NOT NULL);
ALTER TABLE users ADD COLUMN organization_id bigint REFERENCES organizations (id);
-- tenantify:verify the table starts empty
SELECT id FROM organizations;
`,
  'backfills/0002_default_organizations.sql': `INSERT INTO organizations (id, name)
SELECT id, coalesce(email, 'user ' || id) FROM users ON CONFLICT DO NOTHING;
-- tenantify:verify every user has an organization
SELECT u.id FROM users u LEFT JOIN organizations o ON o.id = u.id WHERE o.id IS NULL;
`,
  'backfills/0003_assign_users.sql': `-- tenantify:batch users key=id size=500
UPDATE users SET organization_id = id WHERE id > $1 AND id <= $2 AND organization_id IS NULL;
-- tenantify:verify every user belongs to an organization
SELECT id FROM users WHERE organization_id IS NULL;
`,
  'migrations/0004_index.sql': `-- tenantify:transaction off
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_organization_idx ON users (organization_id);
`,
};

async function withLegacy(): Promise<{ url: string; drop: () => Promise<void> }> {
  const db = await freshDatabase('apply');
  await query(db.url, legacy);
  return db;
}

/** A transaction of the test's own holding an ACCESS SHARE lock on users, so ALTER TABLE waits. */
async function lockUsers(url: string): Promise<{ release: () => Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  await client.query('BEGIN; LOCK TABLE users IN ACCESS SHARE MODE');
  return { release: () => client.end() };
}

describe('apply', () => {
  const dropped = dropAfterAll();
  async function db() {
    const d = dropped(await withLegacy());
    return d.url;
  }

  it('applies every unit, records them, and a second apply has nothing to do', async () => {
    const dir = writePlan(plan);
    const url = await db();
    const first = await runCli(['apply', '-d', url, '--dir', dir]);
    expect(first.stderr + first.stdout).toContain('Applied 4 units');
    expect(first.code).toBe(0);
    expect(await ledgerUnits(url)).toEqual([
      { id: '0001_create_organizations', status: 'applied' },
      { id: '0002_default_organizations', status: 'applied' },
      { id: '0003_assign_users', status: 'applied' },
      { id: '0004_index', status: 'applied' },
    ]);
    const [users] = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM users WHERE organization_id = id');
    expect(users?.n).toBe(3002);
    const second = await runCli(['apply', '-d', url, '--dir', dir, '--json']);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout).units).toEqual([]);
    const status = await runCli(['status', '-d', url, '--dir', dir, '--json']);
    const units = JSON.parse(status.stdout).units as { id: string; kind: string; status: string; checksum: string; appliedAt: string }[];
    expect(units.map((u) => [u.id, u.kind, u.status])).toEqual([
      ['0001_create_organizations', 'migration', 'applied'],
      ['0002_default_organizations', 'backfill', 'applied'],
      ['0003_assign_users', 'backfill', 'applied'],
      ['0004_index', 'migration', 'applied'],
    ]);
    expect(units.every((u) => /^[0-9a-f]{64}$/.test(u.checksum) && !Number.isNaN(Date.parse(u.appliedAt)))).toBe(true);
  });

  it('records each unit once: one started and one applied event, its duration and its verify results', async () => {
    const dir = writePlan({
      'migrations/0001_create_organizations.sql': plan['migrations/0001_create_organizations.sql'],
      'backfills/0002_default_organizations.sql': plan['backfills/0002_default_organizations.sql'],
    });
    const url = await db();
    expect((await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot'])).code).toBe(0);
    const events = await query<{ unit_id: string; events: string[] }>(
      url,
      'SELECT unit_id, array_agg(event ORDER BY id) AS events FROM tenantify.events WHERE unit_id IS NOT NULL GROUP BY 1 ORDER BY 1',
    );
    expect(events).toEqual([
      { unit_id: '0001_create_organizations', events: ['started', 'snapshot_skipped', 'applied'] },
      { unit_id: '0002_default_organizations', events: ['started', 'snapshot_skipped', 'applied'] },
    ]);
    const units = await query<{
      id: string;
      duration_ms: number | null;
      verify_results: { name: string; ok: boolean; violations: number }[];
    }>(url, 'SELECT id, duration_ms, verify_results FROM tenantify.units ORDER BY id');
    expect(units.map((u) => u.verify_results.map(({ name, ok, violations }) => ({ name, ok, violations })))).toEqual([
      [{ name: 'the table starts empty', ok: true, violations: 0 }],
      [{ name: 'every user has an organization', ok: true, violations: 0 }],
    ]);
    expect(units.every((u) => typeof u.duration_ms === 'number' && u.duration_ms >= 0)).toBe(true);
  });

  it('retries a lock timeout with backoff, and applies once the lock is free', async () => {
    const url = await db();
    const dir = writePlan({
      'migrations/0001_add_column.sql':
        '-- tenantify:lock-timeout 100ms\n-- tenantify:retries 8\nALTER TABLE users ADD COLUMN plan text;\n',
    });
    const holder = await lockUsers(url);
    const run = startCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    await until(url, "SELECT count(*)::int AS n FROM tenantify.events WHERE event = 'retry'");
    await holder.release();
    const result = await run.done;
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/0001_add_column: canceling statement due to lock timeout; retry 1 of 8 in \d+ ms/);
    const [column] = await query<{ n: number }>(
      url,
      "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'plan'",
    );
    expect(column?.n).toBe(1);
    // The start travelled with the first attempt, committed on its own: recorded once, before the retries.
    const events = await query<{ event: string }>(url, "SELECT event FROM tenantify.events WHERE unit_id = '0001_add_column' ORDER BY id");
    const names = events.map((e) => e.event);
    expect(names.filter((e) => e === 'started')).toHaveLength(1);
    expect(names.slice(0, 3)).toEqual(['started', 'snapshot_skipped', 'retry']);
    expect(names.at(-1)).toBe('applied');
  });

  it('shows a unit running while its body runs, its message named after it in pg_stat_activity', async () => {
    const url = await db();
    const gate = await holdGate(url);
    const dir = writePlan({ 'migrations/0001_gated.sql': `CREATE TABLE gated (id int);\n${gate.sql}\n` });
    const run = startCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    await gate.reached(run.done);
    const status = await runCli(['status', '-d', url, '--dir', dir, '--json']);
    const units = (JSON.parse(status.stdout) as { units: { id: string; status: string }[] }).units;
    expect(units.map((u) => [u.id, u.status])).toEqual([['0001_gated', 'running']]);
    const activity = await query<{ query: string }>(
      url,
      "SELECT query FROM pg_stat_activity WHERE application_name LIKE 'tenantify apply%' AND datname = current_database() AND state = 'active'",
    );
    expect(activity.map((a) => a.query.slice(0, 28))).toEqual(['/* tenantify: 0001_gated */ ']);
    await gate.open();
    expect((await run.done).code).toBe(0);
    const events = await query<{ event: string }>(url, "SELECT event FROM tenantify.events WHERE unit_id = '0001_gated' ORDER BY id");
    expect(events.map((e) => e.event)).toEqual(['started', 'snapshot_skipped', 'applied']);
  });

  it('gives up on a lock held past its retries: exit 1, the lock timeout named, nothing changed', async () => {
    const url = await db();
    const dir = writePlan({
      'migrations/0001_add_column.sql': '-- tenantify:lock-timeout 50ms\n-- tenantify:retries 1\nALTER TABLE users ADD COLUMN plan text;\n',
    });
    const before = await contentFingerprint(url);
    const holder = await lockUsers(url);
    const result = await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    await holder.release();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('unit 0001_add_column failed: canceling statement due to lock timeout');
    expect(result.stderr).toContain('SQLSTATE 55P03');
    expect(result.stderr).toContain('retry 1 of 1');
    expect(await contentFingerprint(url)).toEqual(before);
    expect(await ledgerUnits(url)).toEqual([{ id: '0001_add_column', status: 'failed' }]);
  });

  it('rolls a unit that fails half-way back whole, records why, and runs nothing after it', async () => {
    const dir = writePlan({
      ...plan,
      'backfills/0002_default_organizations.sql': `INSERT INTO organizations (id, name) SELECT id, coalesce(email, 'user ' || id) FROM users;
UPDATE users SET email = lower(email);
INSERT INTO organizations (id, name)
  VALUES (1, 'a duplicate');
`,
    });
    const url = await db();
    const before = await contentFingerprint(url);
    const result = await runCli(['apply', '-d', url, '--dir', dir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('unit 0002_default_organizations failed: duplicate key value violates unique constraint');
    expect(result.stderr).toContain('at backfills/0002_default_organizations.sql:3:1');
    expect(result.stderr).toContain('SQLSTATE 23505');
    expect(result.stderr).toMatch(/detail: Key \(id\)=\(1\) already exists/);
    expect(await ledgerUnits(url)).toEqual([
      { id: '0001_create_organizations', status: 'applied' },
      { id: '0002_default_organizations', status: 'failed' },
    ]);
    const [{ error } = { error: {} }] = await query<{ error: { sqlstate: string; line: number } }>(
      url,
      "SELECT error FROM tenantify.units WHERE id = '0002_default_organizations'",
    );
    expect(error).toMatchObject({ sqlstate: '23505', line: 3, file: 'backfills/0002_default_organizations.sql' });
    const after = await contentFingerprint(url);
    // Unit 1 added the table and column; unit 2 left nothing: no organization, no lower-cased email.
    expect(after['public.organizations']).toBe('0:');
    const [{ n } = { n: -1 }] = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM users WHERE email <> lower(email)');
    expect(n).toBe(0);
    expect(Object.keys(after)).toEqual(Object.keys(before).concat('public.organizations').sort());
  });

  it('shows the file, line and a caret under a syntax error that only the server finds', async () => {
    const dir = writePlan({
      'migrations/0001_bad.sql': 'CREATE TABLE t (id int);\n\nINSERT INTO t (id)\n  SELECT id FROM users WHERE missing_column > 0;\n',
    });
    const url = await db();
    const result = await runCli(['apply', '-d', url, '--dir', dir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('column "missing_column" does not exist (SQLSTATE 42703)');
    expect(result.stderr).toContain('at migrations/0001_bad.sql:4:30');
    expect(result.stderr).toContain(`  4 |   SELECT id FROM users WHERE missing_column > 0\n    | ${' '.repeat(29)}^`);
    const [t] = await query<{ ok: boolean }>(url, "SELECT to_regclass('public.t') IS NULL AS ok");
    expect(t?.ok).toBe(true);
  });

  it('refuses a violated precheck (exit 3) without applying the unit', async () => {
    const dir = writePlan({
      'migrations/0001_unique_email.sql': `ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
-- tenantify:precheck emails are unique
SELECT email, count(*) FROM users WHERE email IS NOT NULL GROUP BY email HAVING count(*) > 1;
`,
    });
    const url = await db();
    const result = await runCli(['apply', '-d', url, '--dir', dir]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('precheck "emails are unique": 1 row');
    expect(result.stderr).toContain('"email":"user1@example.com"');
    const [c] = await query<{ n: number }>(url, "SELECT count(*)::int AS n FROM pg_constraint WHERE conname = 'users_email_key'");
    expect(c?.n).toBe(0);
    expect(await ledgerUnits(url)).toEqual([{ id: '0001_unique_email', status: 'failed' }]);
  });

  it('rolls back a unit whose verify fails (exit 3)', async () => {
    const dir = writePlan({
      'migrations/0001_column.sql': `ALTER TABLE users ADD COLUMN plan text;
-- tenantify:verify every user has a plan
SELECT id FROM users WHERE plan IS NULL;
`,
    });
    const url = await db();
    const result = await runCli(['apply', '-d', url, '--dir', dir]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('verify "every user has a plan": 3002 rows');
    const [c] = await query<{ n: number }>(
      url,
      "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'plan'",
    );
    expect(c?.n).toBe(0);
  });

  it('--dry-run reports verify results and changes nothing, not even the ledger', async () => {
    const dir = writePlan(plan);
    const url = await db();
    const before = await contentFingerprint(url);
    const result = await runCli(['apply', '-d', url, '--dir', dir, '--dry-run', '--json']);
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout) as { dryRun: boolean; units: { id: string; outcome: string; checks: { ok: boolean }[] }[] };
    expect(doc.dryRun).toBe(true);
    expect(doc.units.map((u) => [u.id, u.outcome])).toEqual([
      ['0001_create_organizations', 'applied'],
      ['0002_default_organizations', 'applied'],
      ['0003_assign_users', 'applied'],
      ['0004_index', 'not-run'],
    ]);
    expect(doc.units[2]?.checks).toEqual([{ name: 'every user belongs to an organization', section: 'verify', ok: true, violations: 0 }]);
    expect(await contentFingerprint(url)).toEqual(before);
    const [schema] = await query<{ n: number }>(url, "SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'tenantify'");
    expect(schema?.n).toBe(0);
  });

  it('refuses a second concurrent apply within a second, naming the holder (exit 4)', async () => {
    const url = await db();
    const gate = await holdGate(url);
    const dir = writePlan({ 'migrations/0001_gated.sql': `${gate.sql}\nCREATE TABLE gated (id int);\n` });
    const first = startCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    await gate.reached(first.done);
    const started = performance.now();
    const second = await runCli(['apply', '-d', url, '--dir', dir]);
    const took = performance.now() - started;
    await gate.open();
    expect(second.code).toBe(4);
    expect(second.stderr).toMatch(
      /another run holds the lock: `tenantify apply` (\(run \d+\) )?by postgres on \S+, client pid \d+, since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(server pid \d+\)/,
    );
    expect(took).toBeLessThan(1500);
    expect((await first.done).code).toBe(0);
    expect(await ledgerUnits(url)).toEqual([{ id: '0001_gated', status: 'applied' }]);
  });

  it('refuses drift (exit 5) and names the unit; plan shows it', async () => {
    const dir = writePlan(plan);
    const url = await db();
    expect((await runCli(['apply', '-d', url, '--dir', dir, '--to', '0002_default_organizations'])).code).toBe(0);
    // A statement changed (a comment alone is a cosmetic edit, not drift).
    const changed = writePlan({
      ...plan,
      'migrations/0001_create_organizations.sql': plan['migrations/0001_create_organizations.sql'].replace(
        'name text NOT NULL',
        'name text NOT NULL, slug text',
      ),
    });
    const before = await contentFingerprint(url);
    const result = await runCli(['apply', '-d', url, '--dir', changed]);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain('drift: applied unit 0001_create_organizations has changed');
    expect(await contentFingerprint(url)).toEqual(before);
    const planned = JSON.parse((await runCli(['plan', '-d', url, '--dir', changed, '--json'])).stdout) as {
      units: { id: string; drift: boolean; status: string }[];
    };
    expect(planned.units.map((u) => [u.id, u.status, u.drift])).toEqual([
      ['0001_create_organizations', 'applied', true],
      ['0002_default_organizations', 'applied', false],
      ['0003_assign_users', 'pending', false],
      ['0004_index', 'pending', false],
    ]);
  });

  it('stops on SIGINT with exit 130, rolled back and recorded, and resumes', async () => {
    const dir = writePlan({
      'migrations/0001_first.sql': 'CREATE TABLE first (id int);\n',
      'migrations/0002_slow.sql': 'CREATE TABLE slow (id int);\nSELECT pg_sleep(30);\n',
    });
    const url = await db();
    const run = startCli(['apply', '-d', url, '--dir', dir]);
    await until(
      url,
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database() AND pid <> pg_backend_pid()",
    );
    const sent = performance.now();
    run.child.kill('SIGINT');
    const result = await run.done;
    expect(result.code).toBe(130);
    expect(performance.now() - sent).toBeLessThan(5000);
    expect(result.stderr).toContain('interrupted by SIGINT at 0002_slow');
    const [slow] = await query<{ ok: boolean }>(url, "SELECT to_regclass('public.slow') IS NULL AS ok");
    expect(slow?.ok).toBe(true);
    const events = await query<{ event: string }>(url, "SELECT event FROM tenantify.events WHERE unit_id = '0002_slow' ORDER BY id");
    expect(events.map((e) => e.event)).toEqual(['started', 'interrupted']);
  });
});
