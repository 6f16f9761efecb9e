/**
 * The upgrade's own writes do not fire the application's triggers (issue 25, item 1): an
 * `updated_at = now()` stamp and an audit row per change on the legacy tables. After apply no
 * legacy column of a legacy row changed and the audit table gained no row; after `rollback
 * --all` the whole content is as before. A role that may not keep them from firing is told
 * which triggers would fire before anything runs (exit 2).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query, serverUrl } from './support/db.js';

const legacyTables = ['accounts', 'projects', 'tasks'];

const legacy = `
  CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL, updated_at timestamptz NOT NULL DEFAULT '2020-01-01');
  CREATE TABLE projects (id serial PRIMARY KEY, account_id int NOT NULL REFERENCES accounts, title text, updated_at timestamptz NOT NULL DEFAULT '2020-01-01');
  CREATE TABLE tasks (id serial PRIMARY KEY, project_id int NOT NULL REFERENCES projects, title text, updated_at timestamptz NOT NULL DEFAULT '2020-01-01');
  CREATE TABLE audit (id bigserial PRIMARY KEY, table_name text NOT NULL, op text NOT NULL, at timestamptz NOT NULL DEFAULT now());
  CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
  CREATE FUNCTION audited() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit (table_name, op) VALUES (TG_TABLE_NAME, TG_OP); RETURN NULL; END $$;
  ${legacyTables
    .map(
      (t) => `CREATE TRIGGER ${t}_touch BEFORE UPDATE ON ${t} FOR EACH ROW EXECUTE FUNCTION touch();
  CREATE TRIGGER ${t}_audit AFTER INSERT OR UPDATE OR DELETE ON ${t} FOR EACH ROW EXECUTE FUNCTION audited();`,
    )
    .join('\n')}
  ALTER TABLE accounts DISABLE TRIGGER USER; ALTER TABLE projects DISABLE TRIGGER USER; ALTER TABLE tasks DISABLE TRIGGER USER;
  INSERT INTO accounts (name) SELECT 'a' || g FROM generate_series(1, 3) g;
  INSERT INTO projects (account_id, title) SELECT 1 + g % 3, 'p' || g FROM generate_series(1, 6) g;
  INSERT INTO tasks (project_id, title) SELECT 1 + g % 6, 't' || g FROM generate_series(1, 40) g;
  ALTER TABLE accounts ENABLE TRIGGER USER; ALTER TABLE projects ENABLE TRIGGER USER; ALTER TABLE tasks ENABLE TRIGGER USER;
`;

function plan(): string {
  const dir = mkdtempSync(join(tmpdir(), 'app-triggers-'));
  writeFileSync(join(dir, 'tenantify.config.json'), `${JSON.stringify({ tenancy: { owner: 'accounts' } }, null, 2)}\n`);
  return dir;
}

/** Every legacy column of every row of the legacy tables and the audit table, as JSON text, in id order. */
async function legacyContent(url: string): Promise<Record<string, string[]>> {
  const content: Record<string, string[]> = {};
  for (const t of [...legacyTables, 'audit']) {
    const rows = await query<{ row: string }>(url, `SELECT (to_jsonb(t) - 'organization_id')::text AS row FROM ${t} AS t ORDER BY id`);
    content[t] = rows.map((r) => r.row);
  }
  return content;
}

/** The whole content: every user table (the ledger aside), every column. */
async function wholeContent(url: string): Promise<Record<string, string[]>> {
  const tables = await query<{ name: string }>(
    url,
    "SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'tenantify') ORDER BY 1",
  );
  const content: Record<string, string[]> = {};
  for (const { name } of tables)
    content[name] = (await query<{ row: string }>(url, `SELECT to_jsonb(t)::text AS row FROM ${name} AS t ORDER BY 1`)).map((r) => r.row);
  return content;
}

describe('application triggers during the upgrade', () => {
  const dropped = dropAfterAll();

  it("do not fire for backfills and their rollbacks; the app's own writes still fire them", async () => {
    const db = dropped(await freshDatabase('trg'));
    await query(db.url, legacy);
    const before = await legacyContent(db.url);
    const whole = await wholeContent(db.url);
    const dir = plan();
    const scaffolded = await runCli(['tenancy', 'scaffold', '-d', db.url, '--dir', dir, '--json']);
    expect(scaffolded.code, scaffolded.stderr).toBe(0);
    const applied = await runCli(['apply', '-d', db.url, '--dir', dir, '--json']);
    expect(applied.code, applied.stderr).toBe(0);
    // Every row got its key, and nothing else changed: no updated_at stamped, no audit row.
    expect(await query(db.url, 'SELECT id FROM tasks WHERE organization_id IS NULL')).toEqual([]);
    expect(await legacyContent(db.url)).toEqual(before);
    // The app's writes still fire them.
    await query(db.url, "UPDATE tasks SET title = 'renamed' WHERE id = 1");
    expect(await query(db.url, "SELECT op FROM audit WHERE table_name = 'tasks'")).toEqual([{ op: 'UPDATE' }]);
    expect(
      (await query<{ stamped: boolean }>(db.url, "SELECT updated_at > '2020-01-01' AS stamped FROM tasks WHERE id = 1"))[0]?.stamped,
    ).toBe(true);
    await query(
      db.url,
      "SET session_replication_role = replica; DELETE FROM audit; UPDATE tasks SET title = 't1', updated_at = '2020-01-01' WHERE id = 1",
    );

    const rolledBack = await runCli(['rollback', '-d', db.url, '--dir', dir, '--all', '--yes', '--json']);
    expect(rolledBack.code, rolledBack.stderr).toBe(0);
    expect(await wholeContent(db.url)).toEqual(whole);
  }, 120_000);

  it('a role that may not keep them from firing is told which would fire, before anything runs (exit 2)', async () => {
    const db = dropped(await freshDatabase('trg'));
    const role = `upgrader_${randomBytes(4).toString('hex')}`;
    await query(serverUrl(), `CREATE ROLE ${role} LOGIN`);
    try {
      await query(
        db.url,
        `GRANT CREATE ON DATABASE ${db.name} TO ${role}; GRANT CREATE ON SCHEMA public TO ${role}; SET ROLE ${role}; ${legacy}`,
      );
      const dir = plan();
      const scaffolded = await runCli(['tenancy', 'scaffold', '-d', db.url, '--dir', dir, '--json']);
      expect(scaffolded.code, scaffolded.stderr).toBe(0);
      const before = await wholeContent(db.url);
      const url = new URL(db.url);
      url.username = role;
      const refused = await runCli(['apply', '-d', url.toString(), '--dir', dir, '--json']);
      expect(refused.code).toBe(2);
      const error = (JSON.parse(refused.stdout || refused.stderr) as { error: { code: string; details: string[] } }).error;
      expect(error.code).toBe('app-triggers-would-fire');
      // Each table's triggers, named; the plan's own key triggers are not among them.
      expect(error.details.map((d) => d.split(',')[0])).toEqual(
        ['accounts_audit', 'accounts_touch', 'projects_audit', 'projects_touch', 'tasks_audit', 'tasks_touch'].map(
          (t) => `public.${t.replace(/_(audit|touch)$/, '')}: trigger ${t}`,
        ),
      );
      expect(await wholeContent(db.url)).toEqual(before);
      expect(await query(db.url, "SELECT 1 FROM pg_namespace WHERE nspname = 'tenantify'")).toEqual([]);

      // Allowed to, the same role runs the plan and the triggers stay quiet.
      await query(serverUrl(), `GRANT SET ON PARAMETER session_replication_role TO ${role}`);
      const applied = await runCli(['apply', '-d', url.toString(), '--dir', dir, '--json']);
      expect(applied.code, applied.stderr).toBe(0);
      expect(await query(db.url, 'SELECT count(*)::int AS n FROM audit')).toEqual([{ n: 0 }]);
    } finally {
      await query(db.url, `REASSIGN OWNED BY ${role} TO postgres; DROP OWNED BY ${role}`).catch(() => {});
      await query(serverUrl(), `REVOKE SET ON PARAMETER session_replication_role FROM ${role}`).catch(() => {});
      await db.drop();
      await query(serverUrl(), `DROP ROLE IF EXISTS ${role}`).catch(() => {});
    }
  }, 120_000);
});
