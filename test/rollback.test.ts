import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { contentFingerprint, dropAfterAll, freshDatabase, holdGate, query, until } from './support/db.js';
import { bin, runCli, startCli } from './support/cli.js';
import { schemaDump } from './support/dump.js';
import { writePlan } from './support/plan-dir.js';
import { ledgerStatuses } from './support/ledger.js';

const legacy = `
  CREATE TABLE users (id serial PRIMARY KEY, email text);
  CREATE TABLE hosts (id serial PRIMARY KEY, user_id int NOT NULL REFERENCES users (id), name text NOT NULL);
  INSERT INTO users (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 2000) g;
  INSERT INTO users (email) VALUES (NULL);
  INSERT INTO hosts (user_id, name) SELECT 1 + (g % 2001), 'host ' || g FROM generate_series(1, 3000) g;`;

/** A migration, a backfill, a batched backfill and a `transaction off` index unit, each with its rollback. */
const plan = {
  'migrations/0001_create_organizations.sql': `-- tenantify:lock-timeout 2s
CREATE TABLE organizations (id bigserial PRIMARY KEY, name text NOT NULL, owner_id int NOT NULL UNIQUE REFERENCES users (id));
ALTER TABLE users ADD COLUMN organization_id bigint REFERENCES organizations (id);
ALTER TABLE hosts ADD COLUMN organization_id bigint REFERENCES organizations (id);
-- tenantify:verify hosts.organization_id exists
SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'hosts' AND column_name = 'organization_id');
`,
  'rollbacks/0001_create_organizations.sql': `ALTER TABLE hosts DROP COLUMN organization_id;
ALTER TABLE users DROP COLUMN organization_id;
DROP TABLE organizations;
-- tenantify:verify organizations is gone
SELECT 1 WHERE to_regclass('public.organizations') IS NOT NULL;
`,
  'backfills/0002_default_organizations.sql': `INSERT INTO organizations (name, owner_id)
SELECT coalesce(email, 'user ' || id), id FROM users ORDER BY id;
UPDATE users u SET organization_id = o.id FROM organizations o WHERE o.owner_id = u.id;
-- tenantify:verify every user belongs to an organization
SELECT id FROM users WHERE organization_id IS NULL;
`,
  'rollbacks/0002_default_organizations.sql': `UPDATE users SET organization_id = NULL;
DELETE FROM organizations;
-- tenantify:verify no organization is left
SELECT id FROM organizations;
`,
  'backfills/0003_assign_hosts.sql': `-- tenantify:batch hosts key=id size=700
UPDATE hosts h SET organization_id = u.organization_id FROM users u WHERE u.id = h.user_id AND h.id > $1 AND h.id <= $2;
-- tenantify:verify every host belongs to an organization
SELECT id FROM hosts WHERE organization_id IS NULL;
`,
  'rollbacks/0003_assign_hosts.sql': `UPDATE hosts SET organization_id = NULL WHERE organization_id IS NOT NULL;
-- tenantify:verify no host is assigned
SELECT id FROM hosts WHERE organization_id IS NOT NULL;
`,
  'migrations/0004_index_organizations.sql': `-- tenantify:transaction off
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_organization_idx ON users (organization_id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS hosts_organization_idx ON hosts (organization_id);
`,
  'rollbacks/0004_index_organizations.sql': `-- tenantify:transaction off
DROP INDEX CONCURRENTLY hosts_organization_idx;
DROP INDEX CONCURRENTLY users_organization_idx;
-- tenantify:verify the indexes are gone
SELECT relname FROM pg_class WHERE relname IN ('users_organization_idx', 'hosts_organization_idx');
`,
};

const ids = ['0001_create_organizations', '0002_default_organizations', '0003_assign_hosts', '0004_index_organizations'] as const;

/** A unit's rollback events (the apply's own events are apply's tests' business). */
async function rollbackEvents(url: string, unitId: string): Promise<string[]> {
  return (
    await query<{ event: string }>(url, "SELECT event FROM tenantify.events WHERE unit_id = $1 AND event LIKE 'roll%' ORDER BY id", [
      unitId,
    ])
  ).map((r) => r.event);
}

/** Everything a failed or refused rollback must leave as it was: schema, content, and the ledger. */
async function snapshotOf(url: string) {
  const ledger = await query(url, "SELECT to_regclass('tenantify.units') IS NOT NULL AS ok");
  return {
    schema: schemaDump(url),
    content: await contentFingerprint(url),
    units: ledger[0]?.ok ? await query(url, 'SELECT id, status, checksum, applied_at, progress FROM tenantify.units ORDER BY id') : [],
    runs: ledger[0]?.ok ? await query(url, 'SELECT count(*)::int AS n FROM tenantify.runs') : [],
  };
}

describe('rollback', () => {
  const dropped = dropAfterAll();
  async function db(): Promise<string> {
    const d = dropped(await freshDatabase('rollback'));
    await query(d.url, legacy);
    return d.url;
  }
  const apply = (url: string, dir: string, ...args: string[]) => runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot', ...args]);
  /**
   * A copy of the legacy database with the whole plan applied: the plan is applied once per
   * file (its rollback files differ from test to test, its units do not), then copied.
   */
  let appliedTemplate: Promise<string> | undefined;
  async function appliedDb(): Promise<string> {
    appliedTemplate ??= (async () => {
      const d = dropped(await freshDatabase('rollback_applied'));
      await query(d.url, legacy);
      const result = await apply(d.url, writePlan(plan));
      expect(result.code, result.stderr).toBe(0);
      return d.name;
    })();
    return dropped(await freshDatabase('rollback', await appliedTemplate)).url;
  }

  it('a full rollback returns the database to exactly its legacy state, and apply again reaches the same content', async () => {
    const dir = writePlan(plan);
    const url = await db();
    const legacySchema = schemaDump(url);
    const legacyContent = await contentFingerprint(url);

    expect((await apply(url, dir)).code).toBe(0);
    const applied = await contentFingerprint(url);
    expect(applied).not.toEqual(legacyContent);

    const result = await runCli(['rollback', '-d', url, '--dir', dir, '--all', '--yes', '--json']);
    expect(result.stderr).not.toContain('error');
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout) as { runId: number; units: { id: string; outcome: string; durationMs: number }[] };
    expect(doc.units.map((u) => [u.id, u.outcome])).toEqual([...ids].reverse().map((id) => [id, 'rolled_back']));
    expect(doc.units.every((u) => Number.isInteger(u.durationMs))).toBe(true);

    expect(schemaDump(url)).toEqual(legacySchema);
    expect(await contentFingerprint(url)).toEqual(legacyContent);
    expect(Object.values(await ledgerStatuses(url))).toEqual(['rolled_back', 'rolled_back', 'rolled_back', 'rolled_back']);
    expect(await rollbackEvents(url, '0004_index_organizations')).toEqual([
      'rollback_started',
      'rollback_statement_done',
      'rollback_statement_done',
      'rolled_back',
    ]);
    const [run] = await query<{ command: string; outcome: string; exit_code: number }>(
      url,
      'SELECT command, outcome, exit_code FROM tenantify.runs WHERE id = $1',
      [doc.runId],
    );
    expect(run).toEqual({ command: 'rollback', outcome: 'done', exit_code: 0 });

    expect((await apply(url, dir)).code).toBe(0);
    expect(await contentFingerprint(url)).toEqual(applied);
    expect(Object.values(await ledgerStatuses(url))).toEqual(['applied', 'applied', 'applied', 'applied']);
  });

  it('also reverts a batched backfill that failed part-way, and a later apply starts it afresh', async () => {
    const failing = {
      ...plan,
      'backfills/0003_assign_hosts.sql': plan['backfills/0003_assign_hosts.sql'].replace(
        'SET organization_id = u.organization_id',
        'SET organization_id = u.organization_id + 0 * (1 / (h.id - 2100))',
      ),
    };
    const url = await db();
    const legacySchema = schemaDump(url);
    const legacyContent = await contentFingerprint(url);
    const failed = await apply(url, writePlan(failing));
    expect(failed.stderr).toContain('division by zero');
    expect(failed.code).toBe(1);
    // The batches before the failing one stay committed (how many depends on the adaptive batch size).
    const [partly] = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM hosts WHERE organization_id IS NOT NULL');
    expect(partly?.n).toBeGreaterThan(0);
    expect(partly?.n).toBeLessThan(2100);
    expect(await ledgerStatuses(url)).toMatchObject({ '0003_assign_hosts': 'failed' });

    const result = await runCli(['rollback', '-d', url, '--dir', writePlan(failing), '--all', '--yes', '--json']);
    expect(result.code).toBe(0);
    expect((JSON.parse(result.stdout) as { units: { id: string }[] }).units.map((u) => u.id)).toEqual([
      '0003_assign_hosts',
      '0002_default_organizations',
      '0001_create_organizations',
    ]);
    expect(schemaDump(url)).toEqual(legacySchema);
    expect(await contentFingerprint(url)).toEqual(legacyContent);

    const again = await apply(url, writePlan(plan));
    expect(again.stderr).not.toContain('resuming');
    expect(again.code).toBe(0);
    const [all] = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM hosts WHERE organization_id IS NULL');
    expect(all?.n).toBe(0);
  });

  it('a batched rollback commits batch by batch and keeps no cursor: a failed one leaves the unit applied with its own progress, and run again it clears what is left', async () => {
    const batchedRollback = `-- tenantify:batch hosts key=id size=300
UPDATE hosts SET organization_id = NULL WHERE id > $1 AND id <= $2 AND organization_id IS NOT NULL;
-- tenantify:verify no host is assigned
SELECT id FROM hosts WHERE organization_id IS NOT NULL;
`;
    const failing = batchedRollback.replace(
      'SET organization_id = NULL',
      'SET organization_id = CASE WHEN 1 / (id - 2100) IS NOT NULL THEN NULL::bigint END',
    );
    const url = await appliedDb();
    const applied = await contentFingerprint(url);
    const unitRow = (): Promise<{ status: string; progress: unknown }[]> =>
      query(url, "SELECT status, progress FROM tenantify.units WHERE id = '0003_assign_hosts'");
    const before = await unitRow();

    const dir = writePlan({ ...plan, 'rollbacks/0003_assign_hosts.sql': failing });
    const failed = await runCli(['rollback', '-d', url, '--dir', dir, '--steps', '2', '--yes', '--json']);
    expect(failed.code).toBe(1);
    expect((JSON.parse(failed.stdout) as { error: { code: string } }).error.code).toBe('unit-failed');
    // The batches before the failing one stayed cleared; the rest is as applied.
    const [left] = await query<{ cleared: number; assigned: number }>(
      url,
      'SELECT count(*) FILTER (WHERE organization_id IS NULL)::int AS cleared, count(*) FILTER (WHERE organization_id IS NOT NULL)::int AS assigned FROM hosts',
    );
    expect(left?.cleared).toBeGreaterThan(0);
    expect(left?.cleared).toBeLessThan(2100);
    expect(left?.assigned).toBe(3000 - (left?.cleared ?? 0));
    // The unit is still applied, and its progress is the apply's (a rollback's batches write none).
    expect(await unitRow()).toEqual(before);

    const again = await runCli([
      'rollback',
      '-d',
      url,
      '--dir',
      writePlan({ ...plan, 'rollbacks/0003_assign_hosts.sql': batchedRollback }),
      '--steps',
      '1',
      '--yes',
    ]);
    expect(again.code).toBe(0);
    expect(await ledgerStatuses(url)).toMatchObject({ '0003_assign_hosts': 'rolled_back', '0004_index_organizations': 'rolled_back' });
    const [assigned] = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM hosts WHERE organization_id IS NOT NULL');
    expect(assigned?.n).toBe(0);
    expect((await apply(url, writePlan(plan))).code).toBe(0);
    expect(await contentFingerprint(url)).toEqual(applied);
  });

  it('--steps N reverts the N newest units, --to ID the units after ID; apply applies them again', async () => {
    const dir = writePlan(plan);
    const url = await appliedDb();
    const applied = await contentFingerprint(url);

    const one = await runCli(['rollback', '-d', url, '--dir', dir, '--steps', '1', '--yes']);
    expect(one.code).toBe(0);
    expect(one.stdout).toContain('Rolled back 1 unit');
    expect(await ledgerStatuses(url)).toMatchObject({ '0003_assign_hosts': 'applied', '0004_index_organizations': 'rolled_back' });
    expect(await query(url, "SELECT relname FROM pg_class WHERE relname LIKE '%organization_idx'")).toEqual([]);

    const to = await runCli(['rollback', '-d', url, '--dir', dir, '--to', '0001_create_organizations', '--yes']);
    expect(to.code).toBe(0);
    expect(await ledgerStatuses(url)).toEqual({
      '0001_create_organizations': 'applied',
      '0002_default_organizations': 'rolled_back',
      '0003_assign_hosts': 'rolled_back',
      '0004_index_organizations': 'rolled_back',
    });
    const [orgs] = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM organizations');
    expect(orgs?.n).toBe(0);

    const again = await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot', '--json']);
    expect(again.code).toBe(0);
    expect((JSON.parse(again.stdout) as { units: { id: string }[] }).units.map((u) => u.id)).toEqual(ids.slice(1));
    // The organizations sequence moved on since the first apply; the rest is the same content.
    const [users] = await query<{ n: number }>(
      url,
      'SELECT count(*)::int AS n FROM users u JOIN organizations o ON o.id = u.organization_id AND o.owner_id = u.id',
    );
    expect(users?.n).toBe(2001);
    expect((await contentFingerprint(url))['public.hosts']?.split(':')[0]).toBe(applied['public.hosts']?.split(':')[0]);
  });

  it('without a terminal, refuses to run without --yes (exit 2) and touches nothing', async () => {
    const dir = writePlan(plan);
    const url = await appliedDb();
    const before = await snapshotOf(url);
    const result = await runCli(['rollback', '-d', url, '--dir', dir, '--all']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('rollback reverts 4 units');
    expect(result.stderr).toContain('0004_index_organizations (migration): rollbacks/0004_index_organizations.sql, statement by statement');
    expect(result.stderr).toContain('pass --yes');
    expect(await snapshotOf(url)).toEqual(before);
  });

  it('refuses (exit 2) when a unit to revert has no rollback file, naming each, and touches nothing', async () => {
    const { ['rollbacks/0002_default_organizations.sql']: _a, ['rollbacks/0003_assign_hosts.sql']: _b, ...partial } = plan;
    const dir = writePlan(partial);
    const url = await appliedDb();
    const before = await snapshotOf(url);
    const result = await runCli(['rollback', '-d', url, '--dir', dir, '--all', '--yes']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('cannot roll back: units 0003_assign_hosts, 0002_default_organizations have no usable rollback file');
    expect(result.stderr).toContain('0002_default_organizations: no rollback file: write rollbacks/0002_default_organizations.sql');
    expect(await snapshotOf(url)).toEqual(before);
    // Only the units that have one: fine.
    expect((await runCli(['rollback', '-d', url, '--dir', dir, '--steps', '1', '--yes'])).code).toBe(0);
  });

  it('stops at a rollback that fails: its transaction rolled back, the unit stays applied, older units untouched (exit 1)', async () => {
    const dir = writePlan({
      ...plan,
      'rollbacks/0003_assign_hosts.sql': `UPDATE hosts SET organization_id = NULL WHERE organization_id IS NOT NULL;
DELETE FROM organizations
  WHERE id = 1;
`,
    });
    const url = await appliedDb();
    const result = await runCli(['rollback', '-d', url, '--dir', dir, '--all', '--yes']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'rollback of 0003_assign_hosts failed: update or delete on table "organizations" violates foreign key constraint',
    );
    expect(result.stderr).toContain('at rollbacks/0003_assign_hosts.sql:2:1');
    expect(result.stderr).toContain('  2 | DELETE FROM organizations\n    | ^');
    expect(result.stderr).toContain('SQLSTATE 23503');
    expect(result.stderr).toContain('0003_assign_hosts stays applied');
    expect(await ledgerStatuses(url)).toEqual({
      '0001_create_organizations': 'applied',
      '0002_default_organizations': 'applied',
      '0003_assign_hosts': 'applied',
      '0004_index_organizations': 'rolled_back',
    });
    // The UPDATE before the failing statement was rolled back with it.
    const [hosts] = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM hosts WHERE organization_id IS NULL');
    expect(hosts?.n).toBe(0);
    const [failed] = await query<{ detail: { error: { sqlstate: string; file: string; line: number } } }>(
      url,
      "SELECT detail FROM tenantify.events WHERE unit_id = '0003_assign_hosts' AND event = 'rollback_failed'",
    );
    expect(failed?.detail.error).toMatchObject({ sqlstate: '23503', file: 'rollbacks/0003_assign_hosts.sql', line: 2 });
    const [run] = await query<{ outcome: string; exit_code: number }>(
      url,
      "SELECT outcome, exit_code FROM tenantify.runs WHERE command = 'rollback'",
    );
    expect(run).toEqual({ outcome: 'failed', exit_code: 1 });
  });

  it('a statement-by-statement rollback that fails resumes after the statements it did', async () => {
    const broken = {
      ...plan,
      'rollbacks/0004_index_organizations.sql':
        '-- tenantify:transaction off\nDROP INDEX CONCURRENTLY hosts_organization_idx;\nDROP INDEX CONCURRENTLY users_organisation_idx;\n',
    };
    const url = await appliedDb();
    const first = await runCli(['rollback', '-d', url, '--dir', writePlan(broken), '--yes']);
    expect(first.code).toBe(1);
    expect(first.stderr).toContain('index "users_organisation_idx" does not exist');
    expect(first.stderr).toContain('the statements before the failing one stay done');
    expect((await ledgerStatuses(url))['0004_index_organizations']).toBe('applied');
    const status = await runCli(['status', '-d', url, '--dir', writePlan(broken), '--no-color']);
    expect(status.stdout.replace(/[│\s]+/g, ' ')).toContain(
      'rollback stopped part-way: 1 of 2 rollback statements done; `tenantify rollback` resumes it',
    );

    // The first statement (no IF EXISTS) must not run again once the typo is fixed.
    const fixed = writePlan(plan);
    const second = await runCli(['rollback', '-d', url, '--dir', fixed, '--steps', '1', '--yes']);
    expect(second.stderr).toContain('1 of 2 rollback statements were done; resuming at statement 2');
    expect(second.code).toBe(0);
    expect(await rollbackEvents(url, '0004_index_organizations')).toEqual([
      'rollback_started',
      'rollback_statement_done',
      'rollback_failed',
      'rollback_started',
      'rollback_statement_done',
      'rolled_back',
    ]);
  });

  it('rolls back a rollback whose verify fails (exit 3)', async () => {
    const dir = writePlan({
      ...plan,
      'rollbacks/0003_assign_hosts.sql': `UPDATE hosts SET organization_id = NULL WHERE id > 10;
-- tenantify:verify no host is assigned
SELECT id FROM hosts WHERE organization_id IS NOT NULL;
`,
    });
    const url = await appliedDb();
    const result = await runCli(['rollback', '-d', url, '--dir', dir, '--steps', '2', '--yes']);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('rollback of 0003_assign_hosts: verify failed');
    expect(result.stderr).toContain('verify "no host is assigned": 10 rows');
    const [hosts] = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM hosts WHERE organization_id IS NULL');
    expect(hosts?.n).toBe(0);
    expect((await ledgerStatuses(url))['0003_assign_hosts']).toBe('applied');
  });

  it('refuses drift (exit 5) like apply, and touches nothing', async () => {
    const url = await appliedDb();
    const before = await snapshotOf(url);
    // A statement changed (a comment alone is a cosmetic edit, not drift).
    const changed = writePlan({
      ...plan,
      'backfills/0003_assign_hosts.sql': plan['backfills/0003_assign_hosts.sql'].replace(
        'organization_id IS NULL',
        'organization_id IS NULL OR user_id IS NULL',
      ),
    });
    const result = await runCli(['rollback', '-d', url, '--dir', changed, '--all', '--yes']);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain('drift: applied unit 0003_assign_hosts has changed');
    expect(await snapshotOf(url)).toEqual(before);
  });

  it('refuses bad --steps/--to with exit 2', async () => {
    const url = await db();
    const dir = writePlan(plan);
    expect((await apply(url, dir, '--to', '0002_default_organizations')).code).toBe(0);
    const before = await snapshotOf(url);
    const steps = await runCli(['rollback', '-d', url, '--dir', dir, '--steps', '3', '--yes']);
    expect(steps.code).toBe(2);
    expect(steps.stderr).toContain('--steps 3: only 2 units are applied');
    const to = await runCli(['rollback', '-d', url, '--dir', dir, '--to', '0003_assign_hosts', '--yes']);
    expect(to.code).toBe(2);
    expect(to.stderr).toContain('--to 0003_assign_hosts: that unit is not applied');
    expect(await snapshotOf(url)).toEqual(before);
  });

  it('has nothing to do on a database without a ledger, and does not create one', async () => {
    const url = await db();
    const result = await runCli(['rollback', '-d', url, '--dir', writePlan(plan), '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ runId: null, units: [] });
    expect(await query(url, "SELECT 1 FROM pg_namespace WHERE nspname = 'tenantify'")).toEqual([]);
  });

  it('is refused (exit 4) while another run holds the lock', async () => {
    const url = await appliedDb();
    const gate = await holdGate(url);
    const dir = writePlan({ ...plan, 'migrations/0005_gated.sql': `${gate.sql}\n` });
    const gated = startCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    await gate.reached(gated.done);
    const result = await runCli(['rollback', '-d', url, '--dir', dir, '--yes']);
    await gate.open();
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('another run holds the lock: `tenantify apply`');
    expect((await gated.done).code).toBe(0);
    expect(Object.values(await ledgerStatuses(url))).toEqual(['applied', 'applied', 'applied', 'applied', 'applied']);
  });

  it('stops on SIGINT with exit 130: the revert in flight rolled back and recorded, the unit still applied', async () => {
    const url = await appliedDb();
    const dir = writePlan({
      ...plan,
      'rollbacks/0004_index_organizations.sql': 'DROP INDEX users_organization_idx;\nSELECT pg_sleep(30);\n',
    });
    const run = startCli(['rollback', '-d', url, '--dir', dir, '--yes']);
    await until(
      url,
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%SELECT pg_sleep(30)%' AND state = 'active' AND pid <> pg_backend_pid()",
    );
    run.child.kill('SIGINT');
    const result = await run.done;
    expect(result.code).toBe(130);
    expect(result.stderr).toContain('interrupted by SIGINT while reverting 0004_index_organizations: its rollback was rolled back');
    expect(await query(url, "SELECT relname FROM pg_class WHERE relname = 'users_organization_idx'")).toEqual([
      { relname: 'users_organization_idx' },
    ]);
    expect((await ledgerStatuses(url))['0004_index_organizations']).toBe('applied');
    expect(await rollbackEvents(url, '0004_index_organizations')).toEqual(['rollback_started', 'rollback_interrupted']);
  });

  const hasScript = spawnSync('script', ['--version']).status === 0;
  it.skipIf(!hasScript)('on a terminal, shows what it will revert and asks; only y goes ahead', async () => {
    const dir = writePlan(plan);
    const url = await appliedDb();
    const ask = async (answer: string) => {
      // `script` gives the CLI a pseudo-terminal; the answer is typed once the question shows.
      const command = [process.execPath, bin, 'rollback', '-d', url, '--dir', dir, '--steps', '1'].map((a) => `'${a}'`).join(' ');
      const child = spawn('script', ['-qec', command, '/dev/null'], {
        env: { ...process.env, NO_COLOR: '1' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let output = '';
      let answered = false;
      // `script` may close its input before a late write lands: that is no failure of the CLI.
      child.stdin.on('error', () => {});
      child.stdout.on('data', (d: Buffer) => {
        output += d.toString();
        if (!answered && output.includes('Revert them? [y/N]')) {
          answered = true;
          child.stdin.write(answer);
        }
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      return { code, output };
    };
    const no = await ask('n\r');
    expect(no.output).toContain('rollback reverts 1 unit');
    expect(no.output).toContain('0004_index_organizations (migration)');
    expect(no.output).toContain('Not confirmed: nothing was rolled back.');
    expect(no.code).toBe(0);
    expect((await ledgerStatuses(url))['0004_index_organizations']).toBe('applied');
    const yes = await ask('y\r');
    expect(yes.output).toContain('Rolled back 1 unit');
    expect(yes.code).toBe(0);
    expect((await ledgerStatuses(url))['0004_index_organizations']).toBe('rolled_back');
  });
});

describe('apply --auto-rollback', () => {
  const dropped = dropAfterAll();
  async function db(): Promise<string> {
    const d = dropped(await freshDatabase('autorb'));
    await query(d.url, legacy);
    return d.url;
  }
  const failingVerify = {
    ...plan,
    'migrations/0005_hosts_not_null.sql': `ALTER TABLE hosts ALTER COLUMN organization_id SET NOT NULL;
-- tenantify:verify no host named host 7
SELECT id, name FROM hosts WHERE name = 'host 7';
`,
    'rollbacks/0005_hosts_not_null.sql': 'ALTER TABLE hosts ALTER COLUMN organization_id DROP NOT NULL;\n',
  };

  it('reverts the units this run applied when a verify fails, newest first, and keeps exit 3', async () => {
    const url = await db();
    const dir = writePlan(failingVerify);
    expect((await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot', '--to', '0001_create_organizations'])).code).toBe(0);
    const before = { schema: schemaDump(url), content: await contentFingerprint(url) };
    const result = await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot', '--auto-rollback']);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('unit 0005_hosts_not_null: verify failed');
    expect(result.stderr).toContain('verify "no host named host 7": 1 row');
    expect(result.stderr).toContain(
      '--auto-rollback reverted 0004_index_organizations, 0003_assign_hosts, 0002_default_organizations: the database is as this run found it',
    );
    expect(schemaDump(url)).toEqual(before.schema);
    expect(await contentFingerprint(url)).toEqual(before.content);
    expect(await ledgerStatuses(url)).toEqual({
      '0001_create_organizations': 'applied',
      '0002_default_organizations': 'rolled_back',
      '0003_assign_hosts': 'rolled_back',
      '0004_index_organizations': 'rolled_back',
      '0005_hosts_not_null': 'failed',
    });
    const runEvents = await query<{ event: string }>(
      url,
      "SELECT event FROM tenantify.events WHERE unit_id IS NULL AND event LIKE 'auto_rollback%' ORDER BY id",
    );
    expect(runEvents.map((e) => e.event)).toEqual(['auto_rollback_started', 'auto_rollback_done']);
    const [run] = await query<{ outcome: string; exit_code: number; options: { autoRollback: boolean } }>(
      url,
      'SELECT outcome, exit_code, options FROM tenantify.runs ORDER BY id DESC LIMIT 1',
    );
    expect(run).toMatchObject({ outcome: 'violations', exit_code: 3, options: { autoRollback: true } });
  });

  it('also reverts the committed batches of a backfill that failed part-way (exit 1)', async () => {
    const url = await db();
    const before = { schema: schemaDump(url), content: await contentFingerprint(url) };
    const failing = {
      ...plan,
      'backfills/0003_assign_hosts.sql': plan['backfills/0003_assign_hosts.sql'].replace(
        'SET organization_id = u.organization_id',
        'SET organization_id = u.organization_id + 0 * (1 / (h.id - 2100))',
      ),
    };
    const result = await runCli(['apply', '-d', url, '--dir', writePlan(failing), '--no-snapshot', '--auto-rollback']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('unit 0003_assign_hosts failed: division by zero');
    expect(result.stderr).toContain('--auto-rollback reverted 0003_assign_hosts, 0002_default_organizations, 0001_create_organizations');
    expect(schemaDump(url)).toEqual(before.schema);
    expect(await contentFingerprint(url)).toEqual(before.content);
  });

  it('refuses to start (exit 2) when a unit it may revert has no rollback file', async () => {
    const url = await db();
    const { ['rollbacks/0002_default_organizations.sql']: _gone, ...lacking } = plan;
    const result = await runCli(['apply', '-d', url, '--dir', writePlan(lacking), '--no-snapshot', '--auto-rollback']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      '--auto-rollback needs a rollback file for every unit it may revert; 0002_default_organizations has none',
    );
    expect(
      await query(url, "SELECT 1 FROM pg_namespace WHERE nspname IN ('tenantify') OR to_regclass('public.organizations') IS NOT NULL"),
    ).toEqual([]);
  });

  it('when a revert fails too, says both, what still stands, and the snapshot to restore from', async () => {
    const url = await db();
    const dir = writePlan({
      ...failingVerify,
      'rollbacks/0003_assign_hosts.sql': 'UPDATE hosts SET organization_id = NULL;\nDELETE FROM organizations WHERE id = 1;\n',
    });
    const result = await runCli(['apply', '-d', url, '--dir', dir, '--auto-rollback']);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(
      'unit 0005_hosts_not_null: verify failed; --auto-rollback failed too: rollback of 0003_assign_hosts failed: update or delete on table "organizations" violates foreign key constraint',
    );
    expect(result.stderr).toContain('at rollbacks/0003_assign_hosts.sql:2:1');
    expect(result.stderr).toContain('reverted: 0004_index_organizations');
    expect(result.stderr).toContain('still applied by this run: 0003_assign_hosts, 0002_default_organizations, 0001_create_organizations');
    expect(result.stderr).toMatch(/snapshot taken before 0003_assign_hosts: \S+ \(tenantify snapshots restore 0003_assign_hosts\)/);
    expect(result.stderr).toContain('the database needs a hand');
    expect(await ledgerStatuses(url)).toMatchObject({
      '0003_assign_hosts': 'applied',
      '0004_index_organizations': 'rolled_back',
      '0005_hosts_not_null': 'failed',
    });
  });
});
