import { describe, expect, it } from 'vitest';
import { dropAfterAll, freshDatabase, holdGate, query, until } from './support/db.js';
import { runCli, startCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';

const legacy = `
  CREATE TABLE users (id serial PRIMARY KEY, email text);
  INSERT INTO users (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 500) g;`;

const plan = {
  'migrations/0001_create_organizations.sql': `CREATE TABLE organizations (id bigint PRIMARY KEY, name text NOT NULL);
ALTER TABLE users ADD COLUMN organization_id bigint REFERENCES organizations (id);
`,
  'backfills/0002_default_organizations.sql': `INSERT INTO organizations (id, name) SELECT id, email FROM users;
UPDATE users SET organization_id = id;
-- tenantify:verify every user belongs to an organization
SELECT id, email FROM users WHERE organization_id IS NULL ORDER BY id;
-- tenantify:verify every organization has a name
SELECT id FROM organizations WHERE name IS NULL;
`,
  'migrations/0003_not_null.sql': `ALTER TABLE users ALTER COLUMN organization_id SET NOT NULL;
-- tenantify:verify users.organization_id is NOT NULL
SELECT attname FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'organization_id' AND NOT attnotnull;
`,
};

interface Check {
  unit: string;
  name: string;
  ok: boolean;
  violations: number;
  sample: Record<string, unknown>[];
  error?: string;
}

describe('verify', () => {
  const dropped = dropAfterAll();
  async function applied(files: Record<string, string> = plan, ...args: string[]): Promise<{ url: string; dir: string }> {
    const d = dropped(await freshDatabase('verify'));
    await query(d.url, legacy);
    const dir = writePlan(files);
    const result = await runCli(['apply', '-d', d.url, '--dir', dir, '--no-snapshot', ...args]);
    if (result.code !== 0) throw new Error(`apply failed: ${result.stderr}`);
    return { url: d.url, dir };
  }
  const verify = (url: string, dir: string, ...args: string[]) => runCli(['verify', '-d', url, '--dir', dir, ...args]);

  it('re-runs the stored verify queries of every applied unit: a table of pass, exit 0', async () => {
    const { url, dir } = await applied();
    const result = await verify(url, dir);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/0002_default_organizations\s+│ every user belongs to an organization\s+│ pass/);
    expect(result.stdout).toMatch(/0001_create_organizations\s+│ \(no verify queries stored\)/);
    expect(result.stdout).toContain('All 3 verify checks of 3 applied units pass.');
    const json = await verify(url, dir, '--json');
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout) as { checks: Check[] };
    expect(doc.checks.map(({ unit, name, ok, violations }) => ({ unit, name, ok, violations }))).toEqual([
      { unit: '0002_default_organizations', name: 'every user belongs to an organization', ok: true, violations: 0 },
      { unit: '0002_default_organizations', name: 'every organization has a name', ok: true, violations: 0 },
      { unit: '0003_not_null', name: 'users.organization_id is NOT NULL', ok: true, violations: 0 },
    ]);
  });

  it('shows a failing check with its first rows and exits 3', async () => {
    const { url, dir } = await applied(plan, '--to', '0002_default_organizations');
    await query(url, 'UPDATE users SET organization_id = NULL WHERE id <= 7');
    const result = await verify(url, dir);
    expect(result.code).toBe(3);
    expect(result.stdout).toMatch(/every user belongs to an organization\s+│ FAIL\s+│ 7 rows:/);
    expect(result.stdout).toContain('{"id":1,"email":"user1@example.com"}');
    expect(result.stdout).toContain('... and 2 more');
    expect(result.stdout).toContain('1 of 2 verify checks failed.');
    const json = await verify(url, dir, '--json');
    expect(json.code).toBe(3);
    const failed = (JSON.parse(json.stdout) as { checks: Check[] }).checks.find((c) => !c.ok);
    expect(failed).toMatchObject({
      unit: '0002_default_organizations',
      name: 'every user belongs to an organization',
      ok: false,
      violations: 7,
    });
    expect(failed?.sample).toHaveLength(5);
    expect(failed?.sample[0]).toEqual({ id: 1, email: 'user1@example.com' });
  });

  it('runs the queries stored when the unit was applied, not the files as they are now', async () => {
    const { url } = await applied();
    const edited = writePlan({
      ...plan,
      'migrations/0003_not_null.sql': `${plan['migrations/0003_not_null.sql']}-- tenantify:verify a new check that fails\nSELECT 1;\n`,
    });
    const result = await verify(url, edited, '--json');
    expect(result.code).toBe(0);
    expect((JSON.parse(result.stdout) as { checks: Check[] }).checks.map((c) => c.name)).not.toContain('a new check that fails');
  });

  it('--unit ID verifies one unit; an unknown or unapplied one is a usage error', async () => {
    const { url, dir } = await applied(plan, '--to', '0002_default_organizations');
    const one = await verify(url, dir, '--unit', '0002_default_organizations', '--json');
    expect(one.code).toBe(0);
    expect(new Set((JSON.parse(one.stdout) as { checks: Check[] }).checks.map((c) => c.unit))).toEqual(
      new Set(['0002_default_organizations']),
    );
    const pending = await verify(url, dir, '--unit', '0003_not_null');
    expect(pending.code).toBe(2);
    expect(pending.stderr).toContain('--unit 0003_not_null: the ledger has no such unit');
    const unknown = await verify(url, dir, '--unit', '0009_nope');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('applied units: 0001_create_organizations, 0002_default_organizations');
  });

  it('is read-only: a stored query that would write fails, the others still run, and nothing changes', async () => {
    const { url, dir } = await applied();
    // A hand-edited ledger (or a query calling a function that writes) must not get to write through verify.
    await query(
      url,
      `UPDATE tenantify.units SET verify_checks = verify_checks || '[{"name": "sneaky write", "sql": "SELECT n FROM (SELECT nextval(''users_id_seq'') AS n) s WHERE n < 0"}, {"name": "gone column", "sql": "SELECT missing FROM users"}]'::jsonb
        WHERE id = '0001_create_organizations'`,
    );
    const [sequence] = await query<{ last_value: number }>(url, 'SELECT last_value FROM users_id_seq');
    const result = await verify(url, dir, '--json');
    expect(result.code).toBe(3);
    const checks = (JSON.parse(result.stdout) as { checks: Check[] }).checks;
    expect(checks.find((c) => c.name === 'sneaky write')).toMatchObject({
      ok: false,
      error: expect.stringContaining('read-only transaction'),
    });
    expect(checks.find((c) => c.name === 'gone column')).toMatchObject({
      ok: false,
      error: expect.stringContaining('column "missing" does not exist (SQLSTATE 42703)'),
    });
    expect(checks.filter((c) => c.ok)).toHaveLength(3);
    expect(await query(url, 'SELECT last_value FROM users_id_seq')).toEqual([sequence]);
    const table = await verify(url, dir);
    expect(table.stdout).toContain('the query failed: column "missing" does not exist');
  });

  it('takes no run lock and blocks no writer: it runs beside an apply, and writes go on while it runs', async () => {
    const gateSql = 'SELECT pg_advisory_xact_lock(4242);';
    // The gated unit waits on the gate as long as the test holds it: no lock timeout (the default 500 ms and its retries end sooner under load).
    const { url, dir } = await applied(
      { ...plan, 'migrations/0004_gated.sql': `-- tenantify:lock-timeout none\n${gateSql}\nCREATE TABLE gated (id int);\n` },
      '--to',
      '0003_not_null',
    );
    const gate = await holdGate(url);
    const gatedApply = startCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    await gate.reached(gatedApply.done);
    await query(
      url,
      `UPDATE tenantify.units SET verify_checks = verify_checks || '[{"name": "slow", "sql": "SELECT 1 WHERE pg_sleep(2) IS NULL"}]'::jsonb WHERE id = '0003_not_null'`,
    );
    const verifying = startCli(['verify', '-d', url, '--dir', dir]);
    await until(
      url,
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%pg_sleep(2)%' AND state = 'active' AND pid <> pg_backend_pid()",
    );
    const verifyLocks = await query<{ n: number }>(
      url,
      "SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND a.query LIKE '%pg_sleep(2)%' AND a.pid <> pg_backend_pid()",
    );
    expect(verifyLocks[0]?.n).toBe(0);
    // A writer on a table the checks read goes through while verify holds its snapshot.
    await query(url, "SET lock_timeout = '1s'; UPDATE users SET email = email WHERE id = 1");
    const result = await verifying.done;
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/slow\s+│ pass/);
    await gate.open();
    expect((await gatedApply.done).code).toBe(0);
  });

  it('says there is nothing to verify on a database without a ledger, and does not create one', async () => {
    const d = dropped(await freshDatabase('verify'));
    const result = await verify(d.url, writePlan(plan), '--json');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ checks: [] });
    expect(await query(d.url, "SELECT 1 FROM pg_namespace WHERE nspname = 'tenantify'")).toEqual([]);
  });
});
