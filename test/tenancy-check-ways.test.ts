/**
 * `tenancy check`: every way into a tenant's rows besides the tables (views over views,
 * materialized views, SECURITY DEFINER functions, global tables that point at tenant
 * rows, the setting's defaults), key types, restrictive policies, `unresolved: keep`,
 * `via` over composite foreign keys, and what the policies cost. An isolated schema of its
 * own (with a security_invoker view, a harmless SECURITY DEFINER function, a global lookup
 * table) has no finding; each rule sees the fault planted for it on a copy of that schema.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { tenancyCheck } from '../src/app/tenancy-check.js';
import { tenancyCheckExitCode } from '../src/cli/commands/tenancy-check.js';
import { tenancyCheckJson } from '../src/ui/tenancy-check-view.js';
import { runCli } from './support/cli.js';
import { contentFingerprint, dropAfterAll, freshDatabase, query, serverUrl } from './support/db.js';
import { schemaDump } from './support/dump.js';
import { writePlan } from './support/plan-dir.js';

const role = `tw_app_${randomBytes(4).toString('hex')}`;
const tenantOf = "current_setting('app.tenant_id')::int";

const isolated = `
  CREATE TABLE plans (id int PRIMARY KEY, name text NOT NULL);
  CREATE TABLE organizations (id int PRIMARY KEY, name text NOT NULL);
  CREATE TABLE accounts (
    id serial PRIMARY KEY,
    organization_id int NOT NULL REFERENCES organizations,
    plan_id int NOT NULL REFERENCES plans,
    name text NOT NULL,
    UNIQUE (organization_id, id));
  CREATE TABLE tasks (
    id serial PRIMARY KEY,
    organization_id int NOT NULL REFERENCES organizations,
    account_id int NOT NULL,
    title text NOT NULL,
    UNIQUE (organization_id, id),
    FOREIGN KEY (organization_id, account_id) REFERENCES accounts (organization_id, id));
  CREATE TABLE attachments (
    id serial PRIMARY KEY,
    organization_id int REFERENCES organizations,
    task_id int,
    name text NOT NULL,
    CONSTRAINT attachments_key_not_null CHECK (organization_id IS NOT NULL),
    CONSTRAINT attachments_task_fkey FOREIGN KEY (organization_id, task_id) REFERENCES tasks (organization_id, id));
  CREATE INDEX attachments_organization_task ON attachments (organization_id, task_id);

  INSERT INTO plans VALUES (1, 'free'), (2, 'pro');
  INSERT INTO organizations VALUES (1, 'Acme'), (2, 'Globex');
  INSERT INTO accounts (organization_id, plan_id, name) VALUES (1, 1, 'ann'), (1, 2, 'bob'), (2, 2, 'eve');
  INSERT INTO tasks (organization_id, account_id, title) VALUES (1, 1, 'design'), (1, 2, 'build'), (1, 1, 'test'), (2, 3, 'sell');
  INSERT INTO attachments (organization_id, task_id, name) VALUES (1, 1, 'spec.pdf'), (1, 2, 'plan.png'), (2, 4, 'deal.doc');

  DO $$
  DECLARE t text;
  BEGIN
    FOREACH t IN ARRAY ARRAY['accounts', 'tasks', 'attachments'] LOOP
      EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
      EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
      EXECUTE format($p$CREATE POLICY isolation ON %I USING (organization_id = ${tenantOf}) WITH CHECK (organization_id = ${tenantOf})$p$, t);
    END LOOP;
  END $$;
  -- Ways in that keep the policies: a view that runs as its reader, a SECURITY DEFINER function over global rows only.
  CREATE VIEW open_tasks WITH (security_invoker = true) AS SELECT id, organization_id, title FROM tasks;
  CREATE FUNCTION plan_name(plan int) RETURNS text LANGUAGE sql STABLE SECURITY DEFINER AS $$ SELECT name FROM plans WHERE id = plan $$;
  GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role};
  GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${role};
  ANALYZE;`;

const model = { owner: 'accounts', tenants: 'organizations', key: 'organization_id', setting: 'app.tenant_id', rls: true };
/** lint.largeTableRows is 2 here, so every tenant table counts as large for rls-policy-cost. */
const config = (tables?: Record<string, unknown>) =>
  JSON.stringify({ lint: { largeTableRows: 2 }, tenancy: { ...model, ...(tables ? { tables } : {}) } });

interface Finding {
  rule: string;
  level: string;
  table: string;
  detail: string;
  rows: number | null;
}
interface Report {
  findings: Finding[];
  checked: { tables: number; rules: number };
}

describe('tenancy check: every way in', () => {
  const dropped = dropAfterAll();
  let template = '';
  let dir = '';

  beforeAll(async () => {
    await query(serverUrl(), `CREATE ROLE ${role} NOLOGIN`);
    dropped({ drop: async () => void (await query(serverUrl(), `DROP ROLE IF EXISTS ${role}`)) });
    const db = dropped(await freshDatabase('tw_tpl'));
    await query(db.url, isolated);
    template = db.name;
    dir = writePlan({ 'tenantify.config.json': config() });
  });

  async function planted(fault = ''): Promise<{ url: string; name: string }> {
    const db = dropped(await freshDatabase('tw', template));
    if (fault) await query(db.url, fault);
    return db;
  }

  async function check(
    url: string,
    options: { as?: string; rules?: string[]; strict?: boolean; plan?: string } = {},
  ): Promise<{ code: number; report: Report }> {
    const result = await tenancyCheck({ dir: options.plan ?? dir, url, as: options.as, rules: options.rules, strict: options.strict });
    return { code: tenancyCheckExitCode(result), report: tenancyCheckJson(result) as Report };
  }

  const summary = (report: Report) => report.findings.map((f) => `${f.rule} ${f.table}${f.rows === null ? '' : ` ${f.rows}`}`);

  it('the isolated schema, probed as the app role: no finding, exit 0; the catalog and the content are unchanged', async () => {
    const { url } = await planted();
    const [schema, content] = [schemaDump(url), await contentFingerprint(url)];
    const result = await runCli(['tenancy', 'check', '-d', url, '--dir', dir, '--as', role, '--strict', '--json']);
    const report = JSON.parse(result.stdout) as Report;
    expect(report.findings).toEqual([]);
    expect(report.checked).toEqual({ tables: 3, rules: 24 });
    expect(result.code).toBe(0);
    expect(schemaDump(url)).toBe(schema);
    expect(await contentFingerprint(url)).toEqual(content);
  });

  it('restrictive policies are judged with the permissive ones: a permissive true narrowed by a restrictive key policy is isolated', async () => {
    const { url } = await planted(`DROP POLICY isolation ON tasks;
      CREATE POLICY everyone ON tasks USING (true) WITH CHECK (true);
      CREATE POLICY isolation ON tasks AS RESTRICTIVE USING (organization_id = ${tenantOf}) WITH CHECK (organization_id = ${tenantOf})`);
    const { code, report } = await check(url, { as: role, strict: true });
    expect(report.findings).toEqual([]);
    expect(code).toBe(0);
    // Restrictive for another role only: the permissive true stands for the app role.
    const other = await planted(`DROP POLICY isolation ON tasks;
      CREATE POLICY everyone ON tasks USING (true) WITH CHECK (true);
      CREATE POLICY isolation ON tasks AS RESTRICTIVE TO pg_monitor USING (organization_id = ${tenantOf}) WITH CHECK (organization_id = ${tenantOf})`);
    const leaky = await check(other.url);
    expect(summary(leaky.report)).toEqual(['policy-always-true public.tasks', 'policy-missing-with-check public.tasks']);
    expect(leaky.code).toBe(3);
  });

  it('a table that carries the key with its foreign keys dropped is still a tenant table: dangling-tenant, and the missing foreign keys', async () => {
    const { url } =
      await planted(`ALTER TABLE attachments DROP CONSTRAINT attachments_task_fkey, DROP CONSTRAINT attachments_organization_id_fkey;
      INSERT INTO attachments (organization_id, task_id, name) VALUES (99, 1, 'ghost'), (98, 2, 'phantom')`);
    const { code, report } = await check(url);
    expect(summary(report)).toEqual([
      'dangling-tenant public.attachments 2',
      'foreign-key-missing public.attachments',
      'foreign-key-missing public.attachments',
    ]);
    expect(report.findings[2]?.detail).toContain('task_id looks like a reference to tasks');
    expect(report.checked.tables).toBe(3);
    expect(code).toBe(3);
  });

  it('view-bypasses-rls: a view owned by a superuser, and a security_invoker view over it', async () => {
    const { url } = await planted(`CREATE VIEW task_titles AS SELECT id, title FROM tasks;
      CREATE VIEW recent_titles WITH (security_invoker = true) AS SELECT * FROM task_titles;
      GRANT SELECT ON task_titles, recent_titles TO ${role}`);
    const { code, report } = await check(url, { as: role, rules: ['view-bypasses-rls'] });
    expect(summary(report)).toEqual(['view-bypasses-rls public.recent_titles', 'view-bypasses-rls public.task_titles']);
    expect(report.findings[0]?.detail).toContain('recent_titles → task_titles → tasks as ');
    expect(code).toBe(3);
  });

  it('the probe catches a leaking view on its own (view-bypasses-rls off): the same rows at tenant 1 and at tenant 2', async () => {
    const { url } = await planted(`CREATE VIEW task_titles AS SELECT id, title FROM tasks; GRANT SELECT ON task_titles TO ${role}`);
    const before = await contentFingerprint(url);
    const { code, report } = await check(url, { as: role, rules: ['probe-read-leak'] });
    expect(summary(report)).toEqual([
      'probe-read-leak public.task_titles 4',
      'probe-read-leak public.task_titles 4',
      'probe-read-leak public.task_titles 4',
    ]);
    expect(report.findings.map((f) => f.detail)).toEqual([
      `as ${role} with app.tenant_id unset: 4 row(s) of the view visible`,
      `as ${role} with app.tenant_id = '': 4 row(s) of the view visible`,
      `as ${role}, the view shows the same 4 row(s) with app.tenant_id = 1 and = 2: it does not narrow to the tenant while it reads tasks`,
    ]);
    expect(code).toBe(3);
    expect(await contentFingerprint(url)).toEqual(before);
  });

  it('materialized-view-exposes-tenants: a materialized view over tenant rows the app role may read', async () => {
    const { url } = await planted(`CREATE MATERIALIZED VIEW task_counts AS SELECT organization_id, count(*) AS tasks FROM tasks GROUP BY 1;
      GRANT SELECT ON task_counts TO ${role}`);
    const { code, report } = await check(url, { as: role });
    expect(summary(report)).toEqual([
      'materialized-view-exposes-tenants public.task_counts',
      'probe-read-leak public.task_counts 2',
      'probe-read-leak public.task_counts 2',
      'probe-read-leak public.task_counts 2',
    ]);
    expect(code).toBe(3);
  });

  it('security-definer-reads-tenants: PL/pgSQL, SQL in a string and a SQL-standard body, each owned by a superuser', async () => {
    const { url } = await planted(`
      CREATE FUNCTION task_title(task int) RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
        DECLARE found_title text;
        BEGIN
          SELECT t.title INTO found_title FROM public.tasks t WHERE t.id = task;
          RETURN found_title;
        END $$;
      CREATE FUNCTION account_names() RETURNS SETOF text LANGUAGE sql SECURITY DEFINER AS $$ WITH a AS (SELECT name FROM accounts) SELECT name FROM a $$;
      CREATE FUNCTION attachment_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER BEGIN ATOMIC SELECT count(*) FROM attachments; END;
      CREATE FUNCTION run_any(q text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN EXECUTE q; END $$;
      CREATE FUNCTION revoked_title(task int) RETURNS text LANGUAGE sql SECURITY DEFINER AS $$ SELECT title FROM tasks WHERE id = task $$;
      REVOKE EXECUTE ON FUNCTION revoked_title(int) FROM PUBLIC`);
    const { code, report } = await check(url, { as: role, rules: ['security-definer-reads-tenants'] });
    expect(summary(report)).toEqual([
      'security-definer-reads-tenants public.account_names()',
      'security-definer-reads-tenants public.attachment_count()',
      'security-definer-reads-tenants public.run_any(q text)',
      'security-definer-reads-tenants public.task_title(task integer)',
    ]);
    expect(report.findings[3]?.detail).toMatch(/^executable by tw_app_\w+; reads tasks as \w+: \w+ is a superuser$/);
    expect(report.findings[2]?.detail).toContain('runs dynamic SQL (EXECUTE)');
    expect(code).toBe(3);
  });

  it('global-table-references-tenant: a table no path reaches with a task_id, and a table the model calls global with a foreign key into tasks', async () => {
    const { url } = await planted(`CREATE TABLE task_labels (task_id int NOT NULL, label text NOT NULL);
      CREATE TABLE task_links (id serial PRIMARY KEY, task_id int NOT NULL REFERENCES tasks (id), url text NOT NULL);
      INSERT INTO task_labels VALUES (4, 'urgent'); INSERT INTO task_links (task_id, url) VALUES (4, 'https://example.com')`);
    const plan = writePlan({ 'tenantify.config.json': config({ task_links: 'global' }) });
    const { code, report } = await check(url, { plan });
    expect(summary(report)).toEqual([
      'global-table-references-tenant public.task_labels',
      'global-table-references-tenant public.task_links',
    ]);
    expect(report.findings.map((f) => f.detail)).toEqual([
      'no organization_id, yet its rows reference tenant rows: task_id names tasks (no foreign key)',
      'no organization_id, yet its rows reference tenant rows: task_id → tasks (task_links_task_id_fkey)',
    ]);
    expect(code).toBe(3);
  });

  it('tenant-key-type-mismatch: a text key beside integer tenants is a finding, and the check does not die on `integer = text`', async () => {
    const { url } =
      await planted(`CREATE TABLE notes (id serial PRIMARY KEY, organization_id text NOT NULL, task_id int NOT NULL REFERENCES tasks (id), body text NOT NULL);
      CREATE INDEX notes_organization ON notes (organization_id);
      INSERT INTO notes (organization_id, task_id, body) VALUES ('1', 1, 'hi'), ('x', 4, 'ho');
      ALTER TABLE notes ENABLE ROW LEVEL SECURITY; ALTER TABLE notes FORCE ROW LEVEL SECURITY;
      CREATE POLICY isolation ON notes USING (organization_id = current_setting('app.tenant_id')) WITH CHECK (organization_id = current_setting('app.tenant_id'))`);
    const { code, report } = await check(url);
    expect(summary(report)).toEqual([
      'tenant-key-type-mismatch public.notes',
      'foreign-key-missing public.notes',
      'foreign-key-without-tenant-key public.notes',
    ]);
    expect(report.findings[0]?.detail).toContain('organization_id is text, organizations.id is integer');
    expect(code).toBe(3);
  });

  it('tenant-setting-default: a database default and a role default in the database; the probe sees the default as a tenant', async () => {
    const { url, name } = await planted();
    await query(url, `ALTER DATABASE ${name} SET app.tenant_id = '1'; ALTER ROLE ${role} IN DATABASE ${name} SET app.tenant_id = '2'`);
    const { code, report } = await check(url, { rules: ['tenant-setting-default'] });
    expect(summary(report).sort()).toEqual([`tenant-setting-default database ${name}`, `tenant-setting-default role ${role}`]);
    expect(code).toBe(3);
    // The probe's fresh session is the connecting user's: the database's default is its "unset".
    const probed = await check(url, { as: role, rules: ['probe-read-leak'] });
    expect(summary(probed.report)).toEqual([
      'probe-read-leak public.accounts 2',
      'probe-read-leak public.attachments 2',
      'probe-read-leak public.open_tasks 3',
      'probe-read-leak public.tasks 3',
    ]);
    expect(probed.code).toBe(3);
  });

  it('null-tenant with unresolved: keep: a NULL key on a row whose task has a tenant is an error; one no path resolves is allowed', async () => {
    const { url } = await planted(`ALTER TABLE attachments DROP CONSTRAINT attachments_key_not_null;
      INSERT INTO attachments (organization_id, task_id, name) VALUES (NULL, NULL, 'orphan');
      ALTER TABLE attachments DROP CONSTRAINT attachments_task_fkey;
      ALTER TABLE attachments ADD CONSTRAINT attachments_task_plain FOREIGN KEY (task_id) REFERENCES tasks (id);
      UPDATE attachments SET organization_id = NULL WHERE id = 2`);
    const plan = writePlan({ 'tenantify.config.json': config({ attachments: { unresolved: 'keep' } }) });
    const { code, report } = await check(url, { plan, rules: ['null-tenant', 'tenant-key-nullable'] });
    expect(summary(report)).toEqual(['null-tenant public.attachments 1']);
    expect(report.findings[0]?.detail).toContain('a row the backfill missed');
    expect(code).toBe(3);
  });

  it('via names a foreign key by its columns without the key: a model written before the upgrade fits composite foreign keys', async () => {
    const { url } = await planted();
    const plan = writePlan({ 'tenantify.config.json': config({ attachments: { via: ['task_id'] } }) });
    const { code, report } = await check(url, { plan, strict: true });
    expect(report.findings).toEqual([]);
    expect(code).toBe(0);
  });

  it('rls-policy-cost: a policy that casts the key (no index serves it) and a VOLATILE function in a policy; warnings, exit 3 with --strict', async () => {
    const { url } = await planted(`DROP POLICY isolation ON tasks;
      CREATE POLICY isolation ON tasks USING (organization_id::text = current_setting('app.tenant_id')) WITH CHECK (organization_id = ${tenantOf});
      CREATE FUNCTION current_tenant() RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT current_setting('app.tenant_id')::int $$;
      DROP POLICY isolation ON accounts;
      CREATE POLICY isolation ON accounts USING (organization_id = current_tenant()) WITH CHECK (organization_id = current_tenant())`);
    const { code, report } = await check(url, { as: role, rules: ['rls-policy-cost'] });
    expect(summary(report)).toEqual(['rls-policy-cost public.accounts', 'rls-policy-cost public.accounts', 'rls-policy-cost public.tasks']);
    expect(report.findings.map((f) => f.level)).toEqual(['warning', 'warning', 'warning']);
    expect(report.findings[0]?.detail).toContain('calls current_tenant(), a VOLATILE function');
    expect(report.findings[2]?.detail).toContain('no index serves the policy');
    expect(code).toBe(0);
    expect((await check(url, { as: role, rules: ['rls-policy-cost'], strict: true })).code).toBe(3);
  });
});
