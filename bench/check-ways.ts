/**
 * bench/check-ways: the whole `tenancy check` with every rule of issue 27 (views over views,
 * materialized views, SECURITY DEFINER bodies, global tables, key types, setting defaults,
 * the probe over every readable relation, the policies' cost) on a schema of 2,000,000 tasks
 * under forced row level security, against psql running the same questions written by hand,
 * alternated in one process on one server. Goal: tenantify within 1.2x of psql.
 *
 * Schema: bench/check.ts's (organizations 1,000 ← accounts 50,000 ← projects 200,000 ← tasks
 * --rows, with its planted violations), plus row level security forced on every tenant table
 * with a policy on the key, an application role, a security_invoker view over tasks and a
 * view over that one, and a SECURITY DEFINER function (PL/pgSQL) over the global rows only.
 *
 * Contenders, their order rotating each round, medians of --rounds:
 * - psql: one connection, the hand-written queries one after the other: the data rules'
 *   counts, the catalog the rules read (tables, the key column, constraints, indexes,
 *   policies, roles, views, functions, setting defaults), and as the app role each
 *   table and view read with the setting unset, empty and at two tenants, and EXPLAIN of a
 *   read per table with sequential scans off;
 * - tenantify: `tenancy check --as app --json` (the built CLI), every rule but the write probe
 *   (psql's script writes nothing);
 * - tenantify (in process): the same check without the node start.
 *
 * Wall times on a shared machine drift with its load: the load average while measuring is
 * reported beside the medians, and the ratio is taken within one run.
 *
 *   npx tsx bench/check-ways.ts [--rows 2000000] [--rounds 5] [--no-build]
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { tenancyCheck } from '../src/app/tenancy-check.js';
import { findPgTool } from '../src/db/pg-tools.js';
import { startThrowawayPostgres } from '../src/db/throwaway.js';
import { rules as allRules } from '../src/tenancy/rules/index.js';
import { build, contenderEnv, expectSuccess, fmt, loadedDatabase, machine, median, repoRoot, table, timed, writeResult } from './lib.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const at = args.indexOf(name);
  return at === -1 ? fallback : Number(args[at + 1]);
};
const rows = option('--rows', 2_000_000);
const rounds = option('--rounds', 5);
const role = 'bench_app';
const rules = allRules.map((r) => r.name).filter((name) => name !== 'probe-write-leak');
const tables = ['accounts', 'projects', 'tasks'];
const policy = "organization_id = NULLIF(current_setting('app.tenant_id', true), '')::int";

const schema = `
  CREATE TABLE organizations (id int PRIMARY KEY, name text NOT NULL);
  CREATE TABLE accounts (id int PRIMARY KEY, organization_id int REFERENCES organizations, email text NOT NULL);
  CREATE TABLE projects (id int PRIMARY KEY, organization_id int REFERENCES organizations, account_id int NOT NULL REFERENCES accounts, name text NOT NULL);
  CREATE TABLE tasks (id int PRIMARY KEY, organization_id int, project_id int NOT NULL REFERENCES projects,
                      assignee_id int REFERENCES accounts, parent_id int REFERENCES tasks, title text NOT NULL);
  INSERT INTO organizations SELECT g, 'org ' || g FROM generate_series(1, 1000) g;
  INSERT INTO accounts SELECT g, 1 + g % 1000, 'a' || g || '@example.com' FROM generate_series(1, 50000) g;
  INSERT INTO projects SELECT g, a.organization_id, a.id, 'p' || g FROM generate_series(1, 200000) g JOIN accounts a ON a.id = 1 + g % 50000;
  INSERT INTO tasks
    SELECT g, p.organization_id, p.id, CASE WHEN g % 3 = 0 THEN NULL ELSE p.account_id END,
           CASE WHEN g > 200000 AND g % 5 = 0 THEN g - 200000 END, 'task ' || g
      FROM generate_series(1, ${rows}) g JOIN projects p ON p.id = 1 + g % 200000;
  UPDATE tasks SET organization_id = NULL WHERE id IN (11, 22, 33, 44, 55, 66, 77);
  ALTER TABLE tasks ADD FOREIGN KEY (organization_id) REFERENCES organizations NOT VALID;
  ALTER TABLE accounts DROP CONSTRAINT accounts_organization_id_fkey;
  UPDATE accounts SET organization_id = 5000 + id WHERE id IN (100, 200, 300, 400, 500);
  ALTER TABLE accounts ADD FOREIGN KEY (organization_id) REFERENCES organizations NOT VALID;
  UPDATE tasks SET assignee_id = assignee_id + 1 WHERE id IN (1, 2, 4, 5, 7, 8, 10, 13, 14);
  UPDATE tasks SET parent_id = parent_id + 1 WHERE id IN (200005, 200010, 200015, 200020);
  CREATE INDEX accounts_organization ON accounts (organization_id);
  CREATE INDEX projects_organization ON projects (organization_id);
  CREATE INDEX tasks_organization ON tasks (organization_id);
  ${tables
    .map(
      (t) => `ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY; ALTER TABLE ${t} FORCE ROW LEVEL SECURITY;
  CREATE POLICY isolation ON ${t} USING (${policy}) WITH CHECK (${policy});`,
    )
    .join('\n  ')}
  CREATE VIEW open_tasks WITH (security_invoker = true) AS SELECT id, organization_id, title FROM tasks WHERE parent_id IS NULL;
  CREATE VIEW open_task_titles WITH (security_invoker = true) AS SELECT id, title FROM open_tasks;
  CREATE FUNCTION organization_name(org int) RETURNS text LANGUAGE plpgsql STABLE SECURITY DEFINER AS $$
    BEGIN RETURN (SELECT name FROM organizations WHERE id = org); END $$;
  DO $$ BEGIN CREATE ROLE ${role} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
  GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role};`;

/** The same questions, as a DBA would type them. */
function handWritten(a: number, b: number): string {
  const asApp = (setting: string | null, body: string): string =>
    `BEGIN; SET LOCAL ROLE ${role};${setting === null ? '' : ` SELECT set_config('app.tenant_id', '${setting}', true);`}\n${body}\nROLLBACK;`;
  const relations = [...tables, 'open_tasks', 'open_task_titles'];
  return `
-- the data rules
SELECT count(*) FROM accounts WHERE organization_id IS NULL;
SELECT count(*) FROM projects WHERE organization_id IS NULL;
SELECT count(*) FROM tasks WHERE organization_id IS NULL;
SELECT count(*) FROM accounts a WHERE a.organization_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM organizations o WHERE o.id = a.organization_id);
SELECT count(*) FROM projects p WHERE p.organization_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM organizations o WHERE o.id = p.organization_id);
SELECT count(*) FROM tasks t WHERE t.organization_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM organizations o WHERE o.id = t.organization_id);
SELECT count(*) FROM projects p JOIN accounts a ON a.id = p.account_id WHERE a.organization_id <> p.organization_id;
SELECT count(*) FROM tasks t JOIN projects p ON p.id = t.project_id WHERE p.organization_id <> t.organization_id;
SELECT count(*) FROM tasks t JOIN accounts a ON a.id = t.assignee_id WHERE a.organization_id <> t.organization_id;
SELECT count(*) FROM tasks t JOIN tasks p ON p.id = t.parent_id WHERE p.organization_id <> t.organization_id;
-- the catalog: the tables' row level security and size, the key column, constraints, indexes, policies, roles
SELECT c.oid::regclass, c.relrowsecurity, c.relforcerowsecurity, c.reltuples, pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.relkind IN ('r', 'p') AND c.relnamespace = 'public'::regnamespace;
SELECT a.attrelid::regclass, format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid WHERE a.attname = 'organization_id' AND NOT a.attisdropped AND c.relnamespace = 'public'::regnamespace;
SELECT k.conrelid::regclass, k.conname, k.contype, k.confrelid::regclass, k.convalidated, pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.connamespace = 'public'::regnamespace;
SELECT i.indrelid::regclass, i.indexrelid::regclass, i.indkey, i.indisunique, i.indisvalid, i.indpred IS NOT NULL FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = 'public'::regnamespace;
SELECT tablename, policyname, permissive, roles, cmd, qual, with_check FROM pg_policies WHERE schemaname = 'public';
SELECT rolname, rolsuper, rolbypassrls FROM pg_roles;
-- views and what they read, SECURITY DEFINER bodies, the setting's defaults, policies' volatile functions
SELECT c.oid::regclass, c.relkind, pg_get_userbyid(c.relowner), c.reloptions, has_table_privilege('${role}', c.oid, 'SELECT') FROM pg_class c WHERE c.relkind IN ('v', 'm') AND c.relnamespace = 'public'::regnamespace;
SELECT DISTINCT w.ev_class::regclass, d.refobjid::regclass FROM pg_rewrite w JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid AND d.refclassid = 'pg_class'::regclass JOIN pg_class c ON c.oid = w.ev_class WHERE c.relnamespace = 'public'::regnamespace AND d.refobjid <> w.ev_class;
SELECT p.oid::regprocedure, pg_get_userbyid(p.proowner), p.prosrc, has_function_privilege('${role}', p.oid, 'EXECUTE') FROM pg_proc p WHERE p.prosecdef AND p.pronamespace = 'public'::regnamespace;
SELECT setrole, setdatabase, setconfig FROM pg_db_role_setting WHERE setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()));
SELECT pol.polname, p.oid::regprocedure FROM pg_policy pol JOIN pg_depend d ON d.classid = 'pg_policy'::regclass AND d.objid = pol.oid AND d.refclassid = 'pg_proc'::regclass JOIN pg_proc p ON p.oid = d.refobjid WHERE p.provolatile = 'v';
-- the probe, as the app role: unset, at tenant A (rows of others), empty; views whole at A and B
${asApp(null, relations.map((r) => `SELECT count(*) FROM ${r};`).join('\n'))}
${asApp(String(a), tables.map((t) => `SELECT count(*) FROM ${t} WHERE organization_id IS DISTINCT FROM ${a};`).join('\n'))}
${asApp('', relations.map((r) => `SELECT count(*) FROM ${r};`).join('\n'))}
${[a, b].map((t) => asApp(String(t), ['open_tasks', 'open_task_titles'].map((r) => `SELECT count(*), md5(string_agg(v::text, E'\\n' ORDER BY v::text)) FROM ${r} v;`).join('\n'))).join('\n')}
-- the policies' cost: a read per table with sequential scans off
${asApp(String(a), `SET LOCAL enable_seqscan = off;\n${tables.map((t) => `EXPLAIN (FORMAT JSON) SELECT * FROM ${t} LIMIT 1;`).join('\n')}`)}
`;
}

async function main(): Promise<void> {
  const psql = findPgTool('psql');
  if (!psql) throw new Error('psql not found');
  if (!args.includes('--no-build')) build();
  const server = await startThrowawayPostgres({ prefer: 'local', log: (l) => process.stderr.write(`${l}\n`) });
  try {
    process.stderr.write(`loading ${rows.toLocaleString()} tasks...\n`);
    const { url: target, ms: loadMs } = await loadedDatabase(server.url, 'check_ways_bench', schema);
    process.stderr.write(`loaded in ${fmt(loadMs / 1000)} s\n`);

    const dir = mkdtempSync(join(tmpdir(), 'check-ways-bench-'));
    writeFileSync(
      join(dir, 'tenantify.config.json'),
      JSON.stringify({ tenancy: { owner: 'accounts', tenants: 'organizations', key: 'organization_id', rls: true } }),
    );
    const cli = join(repoRoot, 'bin', 'tenantify');
    const script = join(dir, 'by-hand.sql');
    // Tenants A and B as the probe picks them for tasks: the first and the last key.
    writeFileSync(script, handWritten(1, 1000));
    let found = '';
    const contenders: Record<string, () => Promise<number>> = {
      psql: async () => {
        const run = await timed(psql.path, ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-d', target, '-f', script]);
        expectSuccess('psql', run);
        return run.ms;
      },
      tenantify: async () => {
        const run = await timed(
          process.execPath,
          [cli, 'tenancy', 'check', '-d', target, '--dir', dir, '--as', role, '--json', '--rule', ...rules],
          { env: contenderEnv(false) },
        );
        if (run.code !== 3) expectSuccess('tenantify', run); // 3: the planted violations, as expected
        const doc = JSON.parse(run.stdout) as { findings: { rule: string; rows: number | null }[] };
        found = doc.findings.map((f) => `${f.rule} ${f.rows ?? ''}`.trim()).join(', ');
        return run.ms;
      },
      'tenantify (in process)': async () => {
        const started = performance.now();
        await tenancyCheck({ dir, url: target, as: role, rules });
        return performance.now() - started;
      },
    };
    const names = Object.keys(contenders);
    const times = new Map<string, number[]>(names.map((n) => [n, []]));
    const loads: number[] = [];
    for (let round = 0; round < rounds; round++) {
      loads.push(loadavg()[0] as number);
      const order = names.map((_, i) => names[(i + round) % names.length] as string);
      for (const name of order) {
        const ms = await (contenders[name] as () => Promise<number>)();
        times.get(name)?.push(ms);
        process.stderr.write(`round ${round + 1}: ${name} ${fmt(ms)} ms\n`);
      }
    }
    const psqlMs = median(times.get('psql') ?? []);
    const rowsOut = names.map((n) => {
      const m = median(times.get(n) ?? []);
      return [n, fmt(m), (m / psqlMs).toFixed(2)];
    });
    console.log(
      `\ntenancy check, ${rules.length} rules (all but probe-write-leak), on ${rows.toLocaleString()} tasks under forced row level security, median of ${rounds} rounds, wall ms`,
    );
    console.log(table(['contender', 'ms', 'x psql'], rowsOut));
    console.log(`tenantify found: ${found}`);
    console.log(`load average (1 min) at each round's start: ${loads.map((l) => l.toFixed(1)).join(', ')}`);
    const ratio = median(times.get('tenantify') ?? []) / psqlMs;
    console.log(`\ntenantify / psql: ${ratio.toFixed(2)}x (goal: at most 1.2x) ${ratio <= 1.2 ? 'met' : 'NOT met'}`);
    writeResult('check-ways.json', { rows, rounds, rules, machine: machine(), loads, times: Object.fromEntries(times), ratio });
  } finally {
    await server.close();
  }
}

await main();
