/**
 * tenancy scaffold end to end on small schemas: the policies (fail, detach, delete, keep),
 * --composite, --rls, the file rules (numbering, never overwriting), and a plan applied
 * while a second connection writes the legacy way the whole time.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runCli, startCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';

/**
 * accounts (owner) ← users, projects ← tasks (assignee → users); audit_logs.user_id nullable.
 * Account 1's task 3 is assigned to account 2's user: a conflict. Audit row 3 has no user:
 * unresolved.
 */
const legacy = `
  CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL);
  CREATE TABLE users (id serial PRIMARY KEY, account_id int NOT NULL REFERENCES accounts ON DELETE CASCADE, email text NOT NULL);
  CREATE TABLE projects (id serial PRIMARY KEY, account_id int NOT NULL REFERENCES accounts ON DELETE CASCADE, title text NOT NULL);
  CREATE TABLE tasks (id serial PRIMARY KEY, project_id int NOT NULL REFERENCES projects ON DELETE CASCADE,
                      assignee_id int REFERENCES users ON DELETE SET NULL, title text NOT NULL);
  CREATE TABLE audit_logs (id serial PRIMARY KEY, user_id int REFERENCES users ON DELETE SET NULL, action text NOT NULL);
  INSERT INTO accounts (name) SELECT 'account ' || g FROM generate_series(1, 3) g;
  INSERT INTO users (account_id, email) SELECT 1 + g % 3, 'u' || g || '@example.com' FROM generate_series(1, 9) g;
  INSERT INTO projects (account_id, title) SELECT 1 + g % 3, 'p' || g FROM generate_series(1, 6) g;
  -- project p has account 1 + p % 3; user u has account 1 + u % 3: assignee = project id keeps the tenant.
  INSERT INTO tasks (project_id, assignee_id, title) SELECT 1 + g % 6, 1 + g % 6, 't' || g FROM generate_series(1, 30) g;
  UPDATE tasks SET assignee_id = 2 WHERE id = 3;       -- project 4 (account 2), user 2 (account 3)
  INSERT INTO audit_logs (user_id, action) VALUES (1, 'login'), (2, 'login'), (NULL, 'system'), (5, 'logout');
`;

const tables = "'accounts', 'users', 'projects', 'tasks', 'audit_logs'";

function plan(config: object): string {
  const dir = mkdtempSync(join(tmpdir(), 'scaffold-'));
  writeFileSync(join(dir, 'tenantify.config.json'), `${JSON.stringify(config, null, 2)}\n`);
  return dir;
}

/** Schema and data, without the ledger, rows in order. */
function dump(url: string): string {
  const out = spawnSync('pg_dump', ['-d', url, '-N', 'tenantify', '--no-owner'], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(out.stderr);
  // Rows in each COPY block sorted: a row updated and put back moves in the heap, and that is not a difference.
  const lines = out.stdout.split('\n').filter((l) => !/^\\(un)?restrict /.test(l));
  const result: string[] = [];
  let rows: string[] | undefined;
  for (const line of lines) {
    if (rows && line === '\\.') {
      result.push(...rows.sort(), line);
      rows = undefined;
    } else if (rows) rows.push(line);
    else {
      result.push(line);
      if (/^COPY .* FROM stdin;$/.test(line)) rows = [];
    }
  }
  return result.join('\n');
}

async function scaffold(url: string, dir: string, ...flags: string[]) {
  const result = await runCli(['tenancy', 'scaffold', '-d', url, '--dir', dir, '--json', ...flags]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as { files: { unit: string; file: string; rollback: string; kind: string }[]; config: string };
}

async function applied(url: string, dir: string) {
  const result = await runCli(['apply', '-d', url, '--dir', dir, '--json']);
  expect(result.code, result.stderr).toBe(0);
}

/**
 * `tenancy check` on the upgraded database: no error but those named, and no warning but the
 * two a plan without --composite leaves by design (keys and foreign keys without the tenant key).
 */
async function checkedClean(url: string, dir: string, allowed: string[] = [], flags: string[] = []): Promise<string[]> {
  // `allowed` names findings the model asks for (conflicts: keep is a warning, TENANCY.md).
  const result = await runCli(['tenancy', 'check', '-d', url, '--dir', dir, '--json', ...flags]);
  const doc = JSON.parse(result.stdout || '{}') as { findings: { rule: string; level: string; table: string }[] };
  const found = doc.findings.map((f) => `${f.rule} ${f.table}`);
  expect(
    doc.findings.filter((f) => f.level === 'error' && !allowed.includes(`${f.rule} ${f.table}`)),
    result.stderr,
  ).toEqual([]);
  expect(
    doc.findings.filter(
      (f) =>
        f.level === 'warning' && !/^(unique|foreign-key)-without-tenant-key$/.test(f.rule) && !allowed.includes(`${f.rule} ${f.table}`),
    ),
  ).toEqual([]);
  expect(result.code).toBe(doc.findings.some((f) => f.level === 'error') ? 3 : 0);
  return found;
}

async function rolledBackExactly(url: string, dir: string, before: string) {
  const result = await runCli(['rollback', '-d', url, '--dir', dir, '--all', '--yes', '--json']);
  expect(result.code, result.stderr).toBe(0);
  expect(dump(url)).toBe(before);
}

/** Rows whose key is not the tenant of the account their path leads to. */
const wrongKeys = `
  SELECT 'users' AS t, u.id FROM users u JOIN accounts a ON a.id = u.account_id WHERE u.organization_id IS DISTINCT FROM a.organization_id
  UNION ALL SELECT 'projects', p.id FROM projects p JOIN accounts a ON a.id = p.account_id WHERE p.organization_id IS DISTINCT FROM a.organization_id
  UNION ALL SELECT 'tasks', t.id FROM tasks t JOIN projects p ON p.id = t.project_id WHERE t.organization_id IS DISTINCT FROM p.organization_id
  UNION ALL SELECT 'accounts', a.id FROM accounts a LEFT JOIN organizations o ON o.id = a.organization_id WHERE o.legacy_accounts_id IS DISTINCT FROM a.id`;

describe('tenancy scaffold', () => {
  const dropped = dropAfterAll();
  async function database(sql = legacy) {
    const db = dropped(await freshDatabase('scf'));
    await query(db.url, sql);
    return db.url;
  }

  it("fail (the default): the first unit's precheck lists the unresolved and conflicting rows, exit 3, nothing changed", async () => {
    const url = await database();
    const before = dump(url);
    const dir = plan({ tenancy: { owner: 'accounts' } });
    const written = await scaffold(url, dir);
    expect(written.files[0]?.unit).toBe('0001_create_organizations');
    const result = await runCli(['apply', '-d', url, '--dir', dir]);
    expect(result.code).toBe(3);
    const said = result.stdout + result.stderr;
    expect(said).toContain('precheck "public.audit_logs: every row leads to a accounts row (unresolved: fail)": 1 row');
    // The rows themselves; the count is the runner's (the query is not cut at a sample).
    expect(said).toMatch(/\{"id":3\}/);
    expect(said).toContain('precheck "public.tasks: assignee_id stays in the row\'s tenant (conflicts: fail)": 1 row');
    expect(said).toMatch(/\{"id":3,"assignee_id":2\}/);
    expect(dump(url)).toBe(before);
  });

  it('detach and delete keep what they change, and the rollback restores it exactly', async () => {
    const url = await database();
    const before = dump(url);
    const dir = plan({
      tenancy: { owner: 'accounts', tables: { tasks: { conflicts: { assignee_id: 'detach' } }, audit_logs: { unresolved: 'delete' } } },
    });
    const written = await scaffold(url, dir);
    expect(written.files.map((f) => f.unit)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\d{4}_tasks_assignee_id_detach$/),
        expect.stringMatching(/^\d{4}_audit_logs_delete_unresolved$/),
      ]),
    );
    await applied(url, dir);
    expect(await query(url, 'SELECT assignee_id FROM tasks WHERE id = 3')).toEqual([{ assignee_id: null }]);
    expect(await query(url, 'SELECT id, assignee_id FROM tenantify_scaffold.tasks_assignee_id_detached')).toEqual([
      { id: 3, assignee_id: 2 },
    ]);
    expect(await query(url, 'SELECT id FROM audit_logs WHERE user_id IS NULL')).toEqual([]);
    expect(await query(url, 'SELECT id, action FROM tenantify_scaffold.audit_logs_unresolved')).toEqual([{ id: 3, action: 'system' }]);
    expect(await query(url, wrongKeys)).toEqual([]);
    const notNull = await query<{ table: string }>(
      url,
      `SELECT attrelid::regclass::text AS table FROM pg_attribute WHERE attname = 'organization_id' AND attnum > 0 AND NOT attnotnull AND attrelid::regclass::text IN (${tables})`,
    );
    expect(notNull).toEqual([]);
    await checkedClean(url, dir);
    await rolledBackExactly(url, dir, before);
  });

  it('keep leaves the rows as they are: the key stays NULL and the column nullable where rows do not resolve', async () => {
    const url = await database();
    const before = dump(url);
    const dir = plan({
      tenancy: { owner: 'accounts', tables: { tasks: { conflicts: { assignee_id: 'keep' } }, audit_logs: { unresolved: 'keep' } } },
    });
    await scaffold(url, dir);
    expect(
      readFileSync(
        join(dir, 'backfills', readdirSync(join(dir, 'backfills')).find((f) => f.includes('backfill_audit_logs')) as string),
        'utf8',
      ),
    ).toContain('unresolved: keep');
    await applied(url, dir);
    expect(await query(url, 'SELECT id, organization_id FROM audit_logs WHERE user_id IS NULL')).toEqual([
      { id: 3, organization_id: null },
    ]);
    expect(await query(url, 'SELECT assignee_id FROM tasks WHERE id = 3')).toEqual([{ assignee_id: 2 }]);
    const nullable = await query<{ table: string }>(
      url,
      `SELECT attrelid::regclass::text AS table FROM pg_attribute WHERE attname = 'organization_id' AND attnum > 0 AND NOT attnotnull AND attrelid::regclass::text IN (${tables}) ORDER BY 1`,
    );
    expect(nullable).toEqual([{ table: 'audit_logs' }]);
    expect(await query(url, wrongKeys)).toEqual([]);
    // The kept conflict is the one finding (TENANCY.md says a warning); nothing else.
    expect(await checkedClean(url, dir, ['cross-tenant-reference public.tasks'])).toContain('cross-tenant-reference public.tasks');
    await rolledBackExactly(url, dir, before);
  });

  it('--composite: the database itself refuses a reference into another tenant', async () => {
    const url = await database();
    const before = dump(url);
    const dir = plan({
      tenancy: { owner: 'accounts', tables: { tasks: { conflicts: { assignee_id: 'detach' } }, audit_logs: { unresolved: 'keep' } } },
    });
    await scaffold(url, dir, '--composite');
    await applied(url, dir);
    // The legacy foreign keys are kept beside the composite ones, which cover them: no finding, --strict passes.
    const legacy = Number(
      (
        await query<{ n: number }>(
          url,
          `SELECT count(*)::int AS n FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text IN (${tables}) AND NOT conname LIKE '%organization_id%'`,
        )
      )[0]?.n,
    );
    expect(legacy).toBeGreaterThan(0);
    const found = await checkedClean(url, dir, [], ['--strict']);
    expect(found.filter((f) => f.startsWith('foreign-key-without-tenant-key'))).toEqual([]);
    // Task 1 is in account 3 (project 2); user 1 is in account 2.
    await expect(query(url, 'UPDATE tasks SET assignee_id = 1 WHERE id = 1')).rejects.toThrow(/tasks_organization_id_assignee_id_fkey/);
    // Re-parenting along the derivation is still fine: the key follows the new parent.
    await query(url, 'UPDATE tasks SET assignee_id = NULL, project_id = 3 WHERE id = 4');
    expect(await query(url, wrongKeys)).toEqual([]);
    await query(url, 'UPDATE tasks SET assignee_id = 5, project_id = 5 WHERE id = 4');
    await rolledBackExactly(url, dir, before);
  });

  it('--rls: a role without BYPASSRLS sees and writes only the tenant in app.tenant_id', async () => {
    const url = await database();
    const dir = plan({
      tenancy: { owner: 'accounts', tables: { tasks: { conflicts: { assignee_id: 'detach' } }, audit_logs: { unresolved: 'delete' } } },
    });
    await scaffold(url, dir, '--rls');
    expect(JSON.parse(readFileSync(join(dir, 'tenantify.config.json'), 'utf8')).tenancy.rls).toBe(true);
    await applied(url, dir);
    const role = `scaffold_app_${Date.now().toString(36)}`;
    await query(
      url,
      `CREATE ROLE ${role} NOLOGIN; GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO ${role}; GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${role}`,
    );
    try {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const [org] = (await client.query<{ id: string }>('SELECT organization_id::text AS id FROM accounts WHERE id = 2')).rows;
        const expected = (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks WHERE organization_id = $1', [org?.id]))
          .rows[0]?.n;
        expect(expected).toBeGreaterThan(0);
        await client.query(`SET ROLE ${role}`);
        expect((await client.query('SELECT count(*)::int AS n FROM tasks')).rows).toEqual([{ n: 0 }]); // setting unset: nothing
        await client.query(`SELECT set_config('app.tenant_id', $1, false)`, [org?.id]);
        expect((await client.query('SELECT count(*)::int AS n FROM tasks')).rows).toEqual([{ n: expected }]);
        expect((await client.query('SELECT DISTINCT organization_id::text AS id FROM tasks')).rows).toEqual([{ id: org?.id }]);
        expect((await client.query('SELECT count(*)::int AS n FROM accounts')).rows).toEqual([{ n: 1 }]);
        // A task of another tenant's project: the trigger gives it that tenant's key, which WITH CHECK refuses.
        await expect(client.query("INSERT INTO tasks (project_id, title) VALUES (2, 'elsewhere')")).rejects.toThrow(/row-level security/);
        // Reset, a custom setting reads '' (as after a SET LOCAL's transaction): still nothing, and no error.
        await client.query('RESET app.tenant_id');
        expect((await client.query('SELECT count(*)::int AS n FROM tasks')).rows).toEqual([{ n: 0 }]);
        await client.query('RESET ROLE');
      } finally {
        await client.end();
      }
      // The check's live probe, as that role, finds no leak either way.
      await checkedClean(url, dir, [], ['--as', role]);
    } finally {
      await query(url, `DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });

  it("numbers after the plan's last unit, never overwrites a file (exit 2, naming it), keeps the config's other keys", async () => {
    const url = await database();
    const dir = plan({
      ledgerSchema: 'tenantify',
      tenancy: { owner: 'accounts', tables: { tasks: { conflicts: { assignee_id: 'keep' } }, audit_logs: { unresolved: 'keep' } } },
    });
    mkdirSync(join(dir, 'migrations'));
    mkdirSync(join(dir, 'rollbacks'));
    writeFileSync(join(dir, 'migrations', '0007_existing.sql'), 'SELECT 1;\n');
    writeFileSync(join(dir, 'rollbacks', '0007_existing.sql'), 'SELECT 1;\n');
    writeFileSync(join(dir, 'rollbacks', '0008_create_organizations.sql'), 'SELECT 1;\n');
    const refused = await runCli(['tenancy', 'scaffold', '-d', url, '--dir', dir]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      `${join(dir, 'rollbacks', '0008_create_organizations.sql')} exists: tenancy scaffold never overwrites a file`,
    );
    expect(readdirSync(join(dir, 'migrations'))).toEqual(['0007_existing.sql']);

    rmSync(join(dir, 'rollbacks', '0008_create_organizations.sql'));
    const written = await scaffold(url, dir);
    expect(written.files[0]).toMatchObject({
      unit: '0008_create_organizations',
      file: 'migrations/0008_create_organizations.sql',
      rollback: 'rollbacks/0008_create_organizations.sql',
    });
    const config = JSON.parse(readFileSync(join(dir, 'tenantify.config.json'), 'utf8'));
    expect(config.ledgerSchema).toBe('tenantify');
    expect(config.tenancy).toMatchObject({
      owner: 'accounts',
      tenants: 'organizations',
      key: 'organization_id',
      setting: 'app.tenant_id',
      rls: false,
    });
    expect(config.tenancy.tables.audit_logs).toEqual({ unresolved: 'keep' });
  });

  it('without an owner, says what is missing (exit 2)', async () => {
    const url = await database();
    const result = await runCli(['tenancy', 'scaffold', '-d', url, '--dir', plan({})]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no tenancy model');
  });
});

/** hosts-like: accounts (owner) ← projects ← tasks, no consistency edges. */
const live = `
  CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL);
  CREATE TABLE projects (id serial PRIMARY KEY, account_id int NOT NULL REFERENCES accounts ON DELETE CASCADE, title text NOT NULL);
  CREATE TABLE tasks (id serial PRIMARY KEY, project_id int NOT NULL REFERENCES projects ON DELETE CASCADE, title text NOT NULL);
  INSERT INTO accounts (name) SELECT 'a' || g FROM generate_series(1, 300) g;
  INSERT INTO projects (account_id, title) SELECT 1 + g % 300, 'p' || g FROM generate_series(1, 1500) g;
  INSERT INTO tasks (project_id, title) SELECT 1 + g % 1500, 't' || g FROM generate_series(1, 12000) g;
`;

describe('tenancy scaffold on a live database', () => {
  const dropped = dropAfterAll();

  // The backfills yield to the app (the throttle): the apply takes longer than without it.
  it(
    'applies while the legacy app inserts and re-parents rows: no write fails, every row ends with the right key, rows written after get theirs',
    { timeout: 300_000 },
    async () => {
      const db = dropped(await freshDatabase('scflive'));
      await query(db.url, live);
      const dir = plan({ tenancy: { owner: 'accounts' } });
      await scaffold(db.url, dir);

      const writer = new pg.Client({ connectionString: db.url });
      await writer.connect();
      const failures: string[] = [];
      let writes = 0;
      let stop = false;
      let after = -1;
      const giveUp = Date.now() + 280_000;
      // The legacy app: a new account with a project and a task, a task re-parented to another
      // account's project, a task on an old project. It knows nothing of tenants.
      const app = (async () => {
        for (let i = 0; !stop || after < 30; i++) {
          if (stop) after++;
          try {
            const a = (await writer.query<{ id: number }>("INSERT INTO accounts (name) VALUES ('live') RETURNING id")).rows[0]?.id;
            const p = (await writer.query<{ id: number }>("INSERT INTO projects (account_id, title) VALUES ($1, 'live') RETURNING id", [a]))
              .rows[0]?.id;
            await writer.query("INSERT INTO tasks (project_id, title) VALUES ($1, 'live')", [p]);
            await writer.query('UPDATE tasks SET project_id = $1 WHERE id = $2', [1 + ((i * 7) % 1500), 1 + ((i * 13) % 12000)]);
            await writer.query("INSERT INTO tasks (project_id, title) VALUES ($1, 'old project')", [1 + ((i * 11) % 1500)]);
            writes += 5;
          } catch (error) {
            failures.push((error as Error).message);
          }
          // A runaway guard, not a pace: the app writes until the apply has ended, then 30 rounds more.
          if (Date.now() > giveUp) break;
          // An application's pace, not a loop flat out: on two cores that alone would be a whole core. It inserts faster than a
          // throttled backfill walks, which once kept the backfill from ending (batched.ts: the walk's end).
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      })();
      const run = startCli(['apply', '-d', db.url, '--dir', dir]);
      const result = await run.done;
      stop = true;
      await app;
      await writer.end();
      expect(result.code, result.stderr).toBe(0);
      expect(failures).toEqual([]);
      expect(writes).toBeGreaterThan(150);
      expect(after).toBeGreaterThanOrEqual(30);

      const wrong = await query(
        db.url,
        `
      SELECT 'projects' AS t, p.id FROM projects p JOIN accounts a ON a.id = p.account_id WHERE p.organization_id IS DISTINCT FROM a.organization_id
      UNION ALL SELECT 'tasks', t.id FROM tasks t JOIN projects p ON p.id = t.project_id WHERE t.organization_id IS DISTINCT FROM p.organization_id
      UNION ALL SELECT 'accounts', a.id FROM accounts a LEFT JOIN organizations o ON o.id = a.organization_id WHERE o.legacy_accounts_id IS DISTINCT FROM a.id`,
      );
      expect(wrong).toEqual([]);
      const [counts] = await query<{ accounts: number; tenants: number; live: number }>(
        db.url,
        `
      SELECT (SELECT count(*)::int FROM accounts) AS accounts, (SELECT count(*)::int FROM organizations) AS tenants,
             (SELECT count(*)::int FROM accounts WHERE name = 'live') AS live`,
      );
      expect(counts?.tenants).toBe(counts?.accounts);
      expect(counts?.live).toBeGreaterThan(30);
      const nullable = await query(
        db.url,
        `SELECT attrelid::regclass::text AS t FROM pg_attribute WHERE attname = 'organization_id' AND attnum > 0 AND NOT attnotnull AND attrelid::regclass::text IN ('accounts', 'projects', 'tasks')`,
      );
      expect(nullable).toEqual([]);
      await checkedClean(db.url, dir);
    },
  );
});
