/**
 * bench/check: the data rules of `tenancy check` (null-tenant, dangling-tenant,
 * cross-tenant-reference) on a schema of a few million rows, against psql running the
 * equivalent anti-joins written by hand, alternated in one process on one server.
 * Goal: tenantify no slower than 1.2x psql.
 *
 * Schema: organizations (1,000) ← accounts (the owner, 50,000) ← projects (200,000) ←
 * tasks (--rows, default 2,000,000; project, assignee and parent, the last two plain
 * foreign keys, the parent a self-reference), every tenant table keyed by organization_id
 * with an index on it. A few planted violations (NULL keys, keys naming no tenant,
 * references into another tenant) so the samples are read too; the bench stops unless
 * tenantify and psql find the same counts.
 *
 * Contenders, their order rotating each round, medians of --rounds:
 * - psql: one connection, the hand-written count queries one after the other;
 * - tenantify: `tenancy check --rule <the three> --json` (the built CLI: node start, catalog,
 *   one snapshot over its default three connections, samples of what it finds);
 * - tenantify (1 connection): the same check in this process on one connection, the
 *   queries one after the other like psql's (no node start).
 *
 *   npx tsx bench/check.ts [--rows 2000000] [--rounds 3] [--no-build]
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tenancyCheck } from '../src/app/tenancy-check.js';
import { findPgTool } from '../src/db/pg-tools.js';
import { startThrowawayPostgres } from '../src/db/throwaway.js';
import { build, contenderEnv, expectSuccess, fmt, loadedDatabase, machine, median, repoRoot, table, timed, writeResult } from './lib.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const at = args.indexOf(name);
  return at === -1 ? fallback : Number(args[at + 1]);
};
const rows = option('--rows', 2_000_000);
const rounds = option('--rounds', 3);
const rules = ['null-tenant', 'dangling-tenant', 'cross-tenant-reference'];

const schema = `
  CREATE TABLE organizations (id int PRIMARY KEY, name text NOT NULL);
  CREATE TABLE accounts (id int PRIMARY KEY, organization_id int REFERENCES organizations, email text NOT NULL);
  CREATE TABLE projects (id int PRIMARY KEY, organization_id int REFERENCES organizations, account_id int NOT NULL REFERENCES accounts, name text NOT NULL);
  CREATE TABLE tasks (id int PRIMARY KEY, organization_id int, project_id int NOT NULL REFERENCES projects,
                      assignee_id int REFERENCES accounts, parent_id int REFERENCES tasks, title text NOT NULL);
  INSERT INTO organizations SELECT g, 'org ' || g FROM generate_series(1, 1000) g;
  INSERT INTO accounts SELECT g, 1 + g % 1000, 'a' || g || '@example.com' FROM generate_series(1, 50000) g;
  INSERT INTO projects SELECT g, a.organization_id, a.id, 'p' || g FROM generate_series(1, 200000) g JOIN accounts a ON a.id = 1 + g % 50000;
  -- each task in its project's tenant, assigned to the project's account (two in three), its parent a task of the same project
  INSERT INTO tasks
    SELECT g, p.organization_id, p.id, CASE WHEN g % 3 = 0 THEN NULL ELSE p.account_id END,
           CASE WHEN g > 200000 AND g % 5 = 0 THEN g - 200000 END, 'task ' || g
      FROM generate_series(1, ${rows}) g JOIN projects p ON p.id = 1 + g % 200000;
  -- planted: 7 tasks without a tenant, 5 accounts whose tenant is gone (their projects and tasks then reference
  -- across tenants too), 9 tasks assigned across tenants, 4 parents across tenants (one of them to a task without a tenant)
  UPDATE tasks SET organization_id = NULL WHERE id IN (11, 22, 33, 44, 55, 66, 77);
  ALTER TABLE tasks ADD FOREIGN KEY (organization_id) REFERENCES organizations NOT VALID;
  ALTER TABLE accounts DROP CONSTRAINT accounts_organization_id_fkey;
  UPDATE accounts SET organization_id = 5000 + id WHERE id IN (100, 200, 300, 400, 500);
  ALTER TABLE accounts ADD FOREIGN KEY (organization_id) REFERENCES organizations NOT VALID;
  UPDATE tasks SET assignee_id = assignee_id + 1 WHERE id IN (1, 2, 4, 5, 7, 8, 10, 13, 14);
  UPDATE tasks SET parent_id = parent_id + 1 WHERE id IN (200005, 200010, 200015, 200020);
  CREATE INDEX accounts_organization ON accounts (organization_id);
  CREATE INDEX projects_organization ON projects (organization_id);
  CREATE INDEX tasks_organization ON tasks (organization_id);`;

/** What a DBA would type: one count per rule, table and edge. */
const handWritten = `
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
`;

async function main(): Promise<void> {
  const psql = findPgTool('psql');
  if (!psql) throw new Error('psql not found');
  if (!args.includes('--no-build')) build();
  const server = await startThrowawayPostgres({ prefer: 'local', log: (l) => process.stderr.write(`${l}\n`) });
  try {
    process.stderr.write(`loading ${rows.toLocaleString()} tasks...\n`);
    const { url: target, ms: loadMs } = await loadedDatabase(server.url, 'check_bench', schema);
    process.stderr.write(`loaded in ${fmt(loadMs / 1000)} s\n`);

    const dir = mkdtempSync(join(tmpdir(), 'check-bench-'));
    writeFileSync(
      join(dir, 'tenantify.config.json'),
      JSON.stringify({ tenancy: { owner: 'accounts', tenants: 'organizations', key: 'organization_id' } }),
    );
    const cli = join(repoRoot, 'bin', 'tenantify');
    const script = join(dir, 'anti-joins.sql');
    writeFileSync(script, handWritten);
    // Both must find the same violations (the counts of every query that found some), or the figures compare nothing.
    let psqlCounts: number[] = [];
    let tenantifyCounts: number[] = [];
    const contenders: Record<string, () => Promise<number>> = {
      psql: async () => {
        const run = await timed(psql.path, ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-d', target, '-f', script]);
        expectSuccess('psql', run);
        psqlCounts = run.stdout
          .split('\n')
          .map(Number)
          .filter((n) => n > 0)
          .sort((a, b) => a - b);
        return run.ms;
      },
      tenantify: async () => {
        const run = await timed(process.execPath, [cli, 'tenancy', 'check', '-d', target, '--dir', dir, '--json', '--rule', ...rules], {
          env: contenderEnv(false),
        });
        if (run.code !== 3) expectSuccess('tenantify', run); // 3: the planted violations, as expected
        tenantifyCounts = (JSON.parse(run.stdout) as { findings: { rows: number }[] }).findings.map((f) => f.rows).sort((a, b) => a - b);
        return run.ms;
      },
      'tenantify (1 connection, in process)': async () => {
        const started = performance.now();
        await tenancyCheck({ dir, url: target, rules, connections: 1 });
        return performance.now() - started;
      },
    };
    const names = Object.keys(contenders);
    const times = new Map<string, number[]>(names.map((n) => [n, []]));
    for (let round = 0; round < rounds; round++) {
      const order = names.map((_, i) => names[(i + round) % names.length] as string);
      for (const name of order) {
        const ms = await (contenders[name] as () => Promise<number>)();
        times.get(name)?.push(ms);
        if (psqlCounts.length && tenantifyCounts.length && JSON.stringify(psqlCounts) !== JSON.stringify(tenantifyCounts)) {
          throw new Error(`psql found ${psqlCounts.join(', ')}; tenantify ${tenantifyCounts.join(', ')}`);
        }
        process.stderr.write(`round ${round + 1}: ${name} ${fmt(ms)} ms\n`);
      }
    }
    const psqlMs = median(times.get('psql') ?? []);
    const rowsOut = names.map((n) => {
      const m = median(times.get(n) ?? []);
      return [n, fmt(m), (m / psqlMs).toFixed(2)];
    });
    console.log(
      `\ntenancy check data rules on ${rows.toLocaleString()} tasks (+ 200,000 projects, 50,000 accounts), median of ${rounds} rounds, wall ms`,
    );
    console.log(table(['contender', 'ms', 'x psql'], rowsOut));
    const ratio = median(times.get('tenantify') ?? []) / psqlMs;
    console.log(`both found the same violations: ${psqlCounts.join(', ')} rows`);
    console.log(`\ntenantify / psql: ${ratio.toFixed(2)}x (goal: at most 1.2x) ${ratio <= 1.2 ? 'met' : 'NOT met'}`);
    writeResult('check.json', { rows, rounds, machine: machine(), times: Object.fromEntries(times), ratio });
  } finally {
    await server.close();
  }
}

await main();
