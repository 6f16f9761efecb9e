/**
 * `tenancy check` against a real PostgreSQL: a correctly isolated schema (composite keys,
 * forced row level security, an application role without BYPASSRLS) has no finding; then
 * each rule sees exactly the fault planted for it on a copy of that schema.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { contentFingerprint, dropAfterAll, freshDatabase, query, serverUrl } from './support/db.js';
import { writePlan } from './support/plan-dir.js';
import { tenancyCheck } from '../src/app/tenancy-check.js';
import { tenancyCheckExitCode } from '../src/cli/commands/tenancy-check.js';
import { tenancyCheckJson } from '../src/ui/tenancy-check-view.js';

const role = `tc_app_${randomBytes(4).toString('hex')}`;
const admin = `${role}_admin`;
const tenantOf = "current_setting('app.tenant_id')::int";

const isolated = `
  CREATE TABLE organizations (id int PRIMARY KEY, name text NOT NULL);
  CREATE TABLE accounts (
    id serial PRIMARY KEY,
    organization_id int NOT NULL REFERENCES organizations,
    name text NOT NULL,
    UNIQUE (organization_id, id));
  CREATE TABLE projects (
    id serial PRIMARY KEY,
    organization_id int NOT NULL REFERENCES organizations,
    account_id int NOT NULL,
    name text NOT NULL,
    UNIQUE (organization_id, id),
    FOREIGN KEY (organization_id, account_id) REFERENCES accounts (organization_id, id));
  CREATE TABLE tasks (
    id serial PRIMARY KEY,
    organization_id int NOT NULL REFERENCES organizations,
    project_id int NOT NULL,
    assignee_id int,
    parent_id int,
    title text NOT NULL,
    UNIQUE (organization_id, id),
    CONSTRAINT tasks_project_fkey FOREIGN KEY (organization_id, project_id) REFERENCES projects (organization_id, id),
    CONSTRAINT tasks_assignee_fkey FOREIGN KEY (organization_id, assignee_id) REFERENCES accounts (organization_id, id),
    CONSTRAINT tasks_parent_fkey FOREIGN KEY (organization_id, parent_id) REFERENCES tasks (organization_id, id));
  CREATE TABLE comments (
    id serial PRIMARY KEY,
    organization_id int NOT NULL REFERENCES organizations,
    task_id int NOT NULL,
    body text NOT NULL,
    UNIQUE (id, organization_id),
    FOREIGN KEY (organization_id, task_id) REFERENCES tasks (organization_id, id));
  CREATE INDEX comments_organization_task ON comments (organization_id, task_id);

  INSERT INTO organizations VALUES (1, 'Acme'), (2, 'Globex');
  INSERT INTO accounts (organization_id, name) VALUES (1, 'ann'), (1, 'bob'), (2, 'eve');
  INSERT INTO projects (organization_id, account_id, name) VALUES (1, 1, 'rockets'), (2, 3, 'widgets');
  INSERT INTO tasks (organization_id, project_id, assignee_id, parent_id, title) VALUES
    (1, 1, 2, NULL, 'design'), (1, 1, 1, 1, 'build'), (1, 1, NULL, 2, 'test'), (2, 2, 3, NULL, 'sell');
  INSERT INTO comments (organization_id, task_id, body) VALUES (1, 1, 'looks good'), (2, 4, 'sold');

  DO $$
  DECLARE t text;
  BEGIN
    FOREACH t IN ARRAY ARRAY['accounts', 'projects', 'tasks', 'comments'] LOOP
      EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
      EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
      EXECUTE format($p$CREATE POLICY isolation ON %I USING (organization_id = ${tenantOf}) WITH CHECK (organization_id = ${tenantOf})$p$, t);
    END LOOP;
  END $$;
  GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}, ${admin};
  GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${role}, ${admin};
  ANALYZE;`;

const model = { tenancy: { owner: 'accounts', tenants: 'organizations', key: 'organization_id', setting: 'app.tenant_id', rls: true } };

interface Finding {
  rule: string;
  level: string;
  table: string;
  detail: string;
  rows: number | null;
  sample: Record<string, unknown>[];
}
interface Report {
  findings: Finding[];
  checked: { tables: number; rules: number };
}

describe('tenancy check', () => {
  const dropped = dropAfterAll();
  let template = '';
  let dir = '';

  beforeAll(async () => {
    // Roles belong to the server: dropped last (dropAfterAll runs newest first), after every database that grants to them.
    await query(serverUrl(), `CREATE ROLE ${role} NOLOGIN; CREATE ROLE ${admin} NOLOGIN BYPASSRLS`);
    dropped({ drop: async () => void (await query(serverUrl(), `DROP ROLE IF EXISTS ${admin}; DROP ROLE IF EXISTS ${role}`)) });
    const db = dropped(await freshDatabase('tc_tpl'));
    await query(db.url, isolated);
    template = db.name;
    dir = writePlan({ 'tenantify.config.json': JSON.stringify(model) });
  });

  /** A copy of the isolated schema with `fault` planted. */
  async function planted(fault = ''): Promise<string> {
    const db = dropped(await freshDatabase('tc', template));
    if (fault) await query(db.url, fault);
    return db.url;
  }

  /** The check in process (as the command runs it: same app function, same exit code); `cli` runs the built command instead. */
  async function check(url: string, ...args: string[]): Promise<{ code: number | null; report: Report }> {
    const flag = (name: string): string[] | undefined => {
      const at = args.indexOf(name);
      if (at === -1) return undefined;
      const values: string[] = [];
      for (let i = at + 1; i < args.length && !(args[i] as string).startsWith('--'); i++) values.push(args[i] as string);
      return values;
    };
    const result = await tenancyCheck({
      dir,
      url,
      as: flag('--as')?.[0],
      strict: args.includes('--strict'),
      rules: flag('--rule'),
      tables: flag('--table'),
    });
    return { code: tenancyCheckExitCode(result), report: tenancyCheckJson(result) as Report };
  }

  async function cli(url: string, ...args: string[]): Promise<{ code: number | null; report: Report; stderr: string }> {
    const result = await runCli(['tenancy', 'check', '-d', url, '--dir', dir, '--json', ...args]);
    let report: Report;
    try {
      report = JSON.parse(result.stdout) as Report;
    } catch {
      throw new Error(`not one JSON document (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
    }
    return { code: result.code, report, stderr: result.stderr };
  }

  const summary = (report: Report) => report.findings.map((f) => `${f.rule} ${f.table} ${f.rows ?? ''}`.trim());

  it('an isolated schema, probed as the application role: no finding, exit 0, and the database unchanged', async () => {
    const url = await planted();
    const before = await contentFingerprint(url);
    const { code, report, stderr } = await cli(url, '--as', role);
    expect(stderr).toContain('Isolated: 24 of 24 rules passed on 4 tables');
    expect(report.findings).toEqual([]);
    expect(report.checked).toEqual({ tables: 4, rules: 24 });
    expect(code).toBe(0);
    expect(await contentFingerprint(url)).toEqual(before);

    const human = await runCli(['tenancy', 'check', '-d', url, '--dir', dir]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('Isolated: 21 of 21 rules passed on 4 tables');
    expect(human.stdout).toContain('probe not run: no --as ROLE');
  });

  it('tenant-key-missing: a tenant table without the key column', async () => {
    const url = await planted(`ALTER TABLE tasks ADD FOREIGN KEY (project_id) REFERENCES projects (id);
                               ALTER TABLE tasks DROP COLUMN organization_id CASCADE;`);
    const { code, report } = await check(url);
    // The CASCADE took the composite foreign key of comments with it: no path reaches comments now, and it is still checked.
    expect(summary(report)).toEqual(['tenant-key-missing public.tasks', 'foreign-key-missing public.comments']);
    expect(report.findings[0]?.detail).toBe('no column organization_id');
    expect(code).toBe(3);
  });

  it('tenant-key-nullable: the key left nullable', async () => {
    const url = await planted('ALTER TABLE projects ALTER organization_id DROP NOT NULL');
    const { code, report } = await check(url);
    expect(summary(report)).toEqual(['tenant-key-nullable public.projects']);
    expect(code).toBe(3);
  });

  it('tenant-key-nullable: a validated CHECK (key IS NOT NULL) stands for NOT NULL; an unvalidated one does not', async () => {
    const url = await planted(`ALTER TABLE projects ALTER organization_id DROP NOT NULL;
                               ALTER TABLE projects ADD CONSTRAINT projects_key_not_null CHECK (organization_id IS NOT NULL)`);
    expect((await check(url)).report.findings).toEqual([]);
    const unvalidated = await planted(`ALTER TABLE projects ALTER organization_id DROP NOT NULL;
                                       ALTER TABLE projects ADD CONSTRAINT projects_key_not_null CHECK (organization_id IS NOT NULL) NOT VALID`);
    const { code, report } = await check(unvalidated);
    expect(report.findings.map((f) => f.detail)).toEqual(['organization_id is nullable (the check projects_key_not_null is NOT VALID)']);
    expect(code).toBe(3);
  });

  it('null-tenant: rows whose key is NULL, counted, with their primary keys', async () => {
    const url = await planted(`ALTER TABLE tasks ALTER organization_id DROP NOT NULL;
                               UPDATE tasks SET organization_id = NULL WHERE id = 3`);
    const { code, report } = await check(url);
    const found = report.findings.find((f) => f.rule === 'null-tenant');
    expect(found).toMatchObject({ level: 'error', table: 'public.tasks', rows: 1, sample: [{ id: 3 }] });
    expect(summary(report)).toEqual(['tenant-key-nullable public.tasks', 'null-tenant public.tasks 1']);
    expect(code).toBe(3);
  });

  it('dangling-tenant: a foreign key left NOT VALID over keys that name no tenant', async () => {
    const url = await planted(`ALTER TABLE accounts DROP CONSTRAINT accounts_organization_id_fkey;
                               INSERT INTO accounts (organization_id, name) VALUES (99, 'ghost'), (98, 'phantom');
                               ALTER TABLE accounts ADD CONSTRAINT accounts_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations NOT VALID`);
    const { code, report } = await cli(url);
    expect(summary(report)).toEqual(['dangling-tenant public.accounts 2']);
    expect(report.findings[0]?.sample).toEqual([
      { id: 4, organization_id: 99 },
      { id: 5, organization_id: 98 },
    ]);
    expect(code).toBe(3);
    const human = await runCli(['tenancy', 'check', '-d', url, '--dir', dir]);
    expect(human.code).toBe(3);
    expect(human.stdout).toContain('✖ error dangling-tenant: keys that name no row of the tenants table');
    expect(human.stdout).toMatch(
      /accounts\s+│ organization_id names no row of public\.organizations\s+│ 2\s+│ \{"id":4,"organization_id":99\}/,
    );
    expect(human.stdout.trim().split('\n').pop()).toBe(
      'NOT isolated: 1 error; 20 of 21 rules passed on 4 tables (tenant-key-missing, tenant-key-type-mismatch, tenant-key-nullable, null-tenant, foreign-key-missing, cross-tenant-reference, global-table-references-tenant, tenant-key-unindexed, unique-without-tenant-key, foreign-key-without-tenant-key, rls-disabled, rls-not-forced, rls-no-policy, policy-ignores-tenant-key, policy-always-true, policy-missing-with-check, view-bypasses-rls, materialized-view-exposes-tenants, security-definer-reads-tenants, tenant-setting-default); probe not run: no --as ROLE.',
    );
  });

  it('cross-tenant-reference: a plain (non-composite) foreign key into another tenant, named by its edge', async () => {
    const url = await planted(`ALTER TABLE tasks ADD COLUMN reviewer_id int REFERENCES accounts (id);
                               UPDATE tasks SET reviewer_id = 3 WHERE id IN (1, 2);
                               UPDATE tasks SET reviewer_id = 1 WHERE id = 3`);
    const { code, report } = await check(url);
    const found = report.findings.find((f) => f.rule === 'cross-tenant-reference');
    expect(found).toMatchObject({
      level: 'error',
      table: 'public.tasks',
      rows: 2,
      detail: 'tasks.reviewer_id → accounts: the referenced row is of another tenant',
    });
    expect(found?.sample).toEqual([
      { id: 1, reviewer_id: 3, organization_id: 1, 'referenced organization_id': 2 },
      { id: 2, reviewer_id: 3, organization_id: 1, 'referenced organization_id': 2 },
    ]);
    // The plain foreign key is the fault's cause, and is reported as such.
    expect(summary(report)).toEqual(['cross-tenant-reference public.tasks 2', 'foreign-key-without-tenant-key public.tasks']);
    expect(code).toBe(3);
  });

  it('cross-tenant-reference: a self-reference into another tenant', async () => {
    const url = await planted(`ALTER TABLE tasks DROP CONSTRAINT tasks_parent_fkey;
                               ALTER TABLE tasks ADD CONSTRAINT tasks_parent_fkey FOREIGN KEY (parent_id) REFERENCES tasks (id);
                               UPDATE tasks SET parent_id = 1 WHERE id = 4`);
    const { code, report } = await check(url);
    const found = report.findings.find((f) => f.rule === 'cross-tenant-reference');
    expect(found).toMatchObject({
      table: 'public.tasks',
      rows: 1,
      detail: 'tasks.parent_id → tasks: the referenced row is of another tenant',
      sample: [{ id: 4, parent_id: 1 }],
    });
    expect(code).toBe(3);
  });

  it('tenant-key-unindexed: a warning; exit 0, and 3 with --strict', async () => {
    const url = await planted('DROP INDEX comments_organization_task');
    const { code, report } = await check(url);
    expect(summary(report)).toEqual(['tenant-key-unindexed public.comments']);
    expect(report.findings[0]?.level).toBe('warning');
    expect(code).toBe(0);
    const strict = await cli(url, '--strict');
    expect(strict.code).toBe(3);
    expect(strict.report.findings.map((f) => f.rule)).toEqual(['tenant-key-unindexed']);
    expect(strict.stderr).toContain('NOT isolated: 1 warning;');
  });

  it('unique-without-tenant-key: a unique constraint that holds across tenants', async () => {
    const url = await planted('ALTER TABLE accounts ADD COLUMN email text CONSTRAINT accounts_email_key UNIQUE');
    const { code, report } = await check(url);
    expect(summary(report)).toEqual(['unique-without-tenant-key public.accounts']);
    expect(report.findings[0]?.detail).toBe('unique accounts_email_key (email) does not include organization_id');
    expect(code).toBe(0);
    expect((await check(url, '--strict')).code).toBe(3);
  });

  it('foreign-key-without-tenant-key: a reference that does not carry the key; beside a composite one that does, it is covered', async () => {
    const covered = await planted('ALTER TABLE comments ADD CONSTRAINT comments_task_plain FOREIGN KEY (task_id) REFERENCES tasks (id)');
    expect((await check(covered, '--strict')).report.findings).toEqual([]);
    const url = await planted(`ALTER TABLE comments DROP CONSTRAINT comments_organization_id_task_id_fkey;
                               ALTER TABLE comments ADD CONSTRAINT comments_task_plain FOREIGN KEY (task_id) REFERENCES tasks (id)`);
    const { code, report } = await check(url);
    expect(summary(report)).toEqual(['foreign-key-without-tenant-key public.comments']);
    expect(report.findings[0]?.detail).toContain('comments.task_id → tasks (comments_task_plain)');
    expect(code).toBe(0);
  });

  it.each([
    ['rls-disabled', 'ALTER TABLE projects DISABLE ROW LEVEL SECURITY'],
    ['rls-not-forced', 'ALTER TABLE projects NO FORCE ROW LEVEL SECURITY'],
    ['rls-no-policy', 'DROP POLICY isolation ON projects'],
  ])('%s', async (rule, fault) => {
    const url = await planted(fault);
    const { code, report } = await check(url);
    expect(summary(report)).toEqual([`${rule} public.projects`]);
    expect(code).toBe(3);
  });

  it('policy-ignores-tenant-key: an OR branch that admits rows when the setting is unset', async () => {
    const url = await planted(`DROP POLICY isolation ON tasks;
      CREATE POLICY isolation ON tasks USING (organization_id = ${tenantOf} OR current_setting('app.tenant_id', true) IS NULL)
        WITH CHECK (organization_id = ${tenantOf})`);
    const { code, report } = await check(url);
    expect(summary(report)).toEqual(['policy-ignores-tenant-key public.tasks']);
    expect(report.findings[0]?.detail).toBe(
      "policy isolation (ALL): USING: current_setting('app.tenant_id'::text, true) IS NULL admits rows without comparing organization_id with current_setting('app.tenant_id')",
    );
    expect(code).toBe(3);
  });

  it('policy-always-true: a permissive policy that admits every row', async () => {
    const url = await planted('CREATE POLICY everyone ON projects FOR SELECT USING (1 = 1)');
    const { code, report } = await check(url);
    expect(summary(report)).toEqual(['policy-always-true public.projects']);
    expect(code).toBe(3);
  });

  it('policy-missing-with-check: an UPDATE policy whose WITH CHECK admits anything', async () => {
    const url = await planted(`CREATE POLICY edit ON tasks FOR UPDATE USING (organization_id = ${tenantOf}) WITH CHECK (true)`);
    const { code, report } = await check(url);
    expect(summary(report)).toEqual(['policy-missing-with-check public.tasks']);
    expect(report.findings[0]?.detail).toBe('policy edit (UPDATE): WITH CHECK (true) admits any row');
    expect(code).toBe(3);
  });

  it('probe-read-leak: the OR branch shows every row when the setting is unset; the database is unchanged', async () => {
    // Both branches with missing_ok: unset, the first is NULL instead of an error, and the second admits every row.
    const url = await planted(`DROP POLICY isolation ON tasks;
      CREATE POLICY isolation ON tasks USING (organization_id = current_setting('app.tenant_id', true)::int OR current_setting('app.tenant_id', true) IS NULL)
        WITH CHECK (organization_id = ${tenantOf})`);
    const before = await contentFingerprint(url);
    const { code, report } = await check(url, '--as', role, '--rule', 'probe-read-leak', 'probe-write-leak');
    expect(summary(report)).toEqual(['probe-read-leak public.tasks 4']);
    expect(report.findings[0]?.detail).toBe(`as ${role} with app.tenant_id unset: 4 row(s) visible`);
    expect(report.checked).toEqual({ tables: 4, rules: 2 });
    expect(code).toBe(3);
    expect(await contentFingerprint(url)).toEqual(before);
  });

  it('probe-read-leak: a role with BYPASSRLS sees every tenant, and the finding says why', async () => {
    const url = await planted();
    const { code, report } = await check(url, '--as', admin, '--table', 'projects');
    expect(summary(report)).toEqual([
      'probe-read-leak public.projects 2',
      'probe-read-leak public.projects 1',
      'probe-read-leak public.projects 2',
    ]);
    expect(report.findings.map((f) => f.detail)).toEqual([
      `as ${admin} with app.tenant_id unset: 2 row(s) visible (${admin} has BYPASSRLS)`,
      `as ${admin} with app.tenant_id = 1: 1 row(s) of other tenants visible (${admin} has BYPASSRLS)`,
      `as ${admin} with app.tenant_id = '': 2 row(s) visible (${admin} has BYPASSRLS)`,
    ]);
    expect(report.findings[1]?.sample).toEqual([{ id: 2, organization_id: 2 }]);
    expect(code).toBe(3);
  });

  it('probe-read-leak: a role that owns a table whose row level security is not forced bypasses it, and the finding says so', async () => {
    const url = await planted(`ALTER TABLE comments OWNER TO ${role}; ALTER TABLE comments NO FORCE ROW LEVEL SECURITY`);
    const { code, report } = await check(url, '--as', role, '--rule', 'probe-read-leak');
    expect(report.findings.map((f) => [f.table, f.rows])).toEqual([
      ['public.comments', 2],
      ['public.comments', 1],
      ['public.comments', 2],
    ]);
    expect(report.findings[1]?.detail).toBe(
      `as ${role} with app.tenant_id = 1: 1 row(s) of other tenants visible (${role} owns the table and row level security is not forced)`,
    );
    expect(code).toBe(3);
  });

  it('probe-write-leak: an INSERT policy whose WITH CHECK admits anything lets a row into another tenant; nothing is committed', async () => {
    const url = await planted('CREATE POLICY signup ON accounts FOR INSERT WITH CHECK (true)');
    const before = await contentFingerprint(url);
    const { code, report } = await check(url, '--as', role, '--rule', 'probe-write-leak');
    expect(summary(report)).toEqual(['probe-write-leak public.accounts 1']);
    expect(report.findings[0]?.detail).toBe(`as ${role} with app.tenant_id = 1: an INSERT with the key 2 went through`);
    expect(code).toBe(3);
    expect(await contentFingerprint(url)).toEqual(before);
    expect(await query(url, 'SELECT count(*)::int AS n FROM accounts')).toEqual([{ n: 3 }]);
  });

  it('exit 2: an unknown rule, a table outside the model, a model that does not fit the database; nothing changed', async () => {
    const url = await planted();
    const before = await contentFingerprint(url);
    const rule = await runCli(['tenancy', 'check', '-d', url, '--dir', dir, '--rule', 'no-such-rule']);
    expect(rule.code).toBe(2);
    expect(rule.stderr).toContain('--rule no-such-rule: no such rule');
    const table = await runCli(['tenancy', 'check', '-d', url, '--dir', dir, '--table', 'organizations']);
    expect(table.code).toBe(2);
    expect(table.stderr).toContain('--table organizations: not a tenant table of the model');
    const owner = await runCli(['tenancy', 'check', '-d', url, '--dir', dir, '--owner', 'customers']);
    expect(owner.code).toBe(2);
    expect(owner.stderr).toContain('customers');
    expect(await contentFingerprint(url)).toEqual(before);
  });
});
