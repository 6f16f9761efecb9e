import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { runCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';

const api = fileURLToPath(new URL('../dist/index.js', import.meta.url));

describe('TypeScript units', () => {
  const dropped = dropAfterAll();

  it('defineUnit and defineBackfill run with Kysely, in transactions, with verify checks', async () => {
    const db = dropped(await freshDatabase('ts'));
    await query(
      db.url,
      "CREATE TABLE hosts (id int PRIMARY KEY, name text); INSERT INTO hosts SELECT g, 'h' || g FROM generate_series(1, 2500) g;",
    );
    const dir = writePlan({
      'migrations/0001_organizations.ts': `
import { defineUnit, sql } from ${JSON.stringify(api)};
export default defineUnit({
  async up(db, ctx) {
    await db.schema.createTable('organizations').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('name', 'text', (c) => c.notNull()).execute();
    await db.insertInto('organizations').values({ id: 1, name: 'default' }).execute();
    await sql\`ALTER TABLE hosts ADD COLUMN organization_id integer REFERENCES organizations (id)\`.execute(db);
    ctx.log('organizations created');
  },
  verify: [{ name: 'one default organization', sql: "SELECT id FROM organizations WHERE name <> 'default'" }],
});
`,
      'backfills/0002_hosts.ts': `
import { defineBackfill } from ${JSON.stringify(api)};
export default defineBackfill({
  table: 'hosts', key: 'id', size: 1000,
  async batch(db, { from, to }) {
    const result = await db.updateTable('hosts').set({ organization_id: 1 }).where('id', '>', Number(from)).where('id', '<=', Number(to)).executeTakeFirst();
    return result.numUpdatedRows;
  },
  verify: [{ name: 'every host has an organization', sql: 'SELECT id FROM hosts WHERE organization_id IS NULL' }],
});
`,
    });
    const result = await runCli(['apply', '-d', db.url, '--dir', dir]);
    expect(result.stderr).toContain('0001_organizations: organizations created');
    expect(result.code).toBe(0);
    const [hosts] = await query<{ n: number }>(db.url, 'SELECT count(*)::int AS n FROM hosts WHERE organization_id = 1');
    expect(hosts?.n).toBe(2500);
    const units = await query<{ id: string; status: string; progress: { rowsDone: number; batches: number } }>(
      db.url,
      'SELECT id, status, progress FROM tenantify.units ORDER BY id',
    );
    expect(units.map((u) => [u.id, u.status])).toEqual([
      ['0001_organizations', 'applied'],
      ['0002_hosts', 'applied'],
    ]);
    expect(units[1]?.progress.rowsDone).toBe(2500);
    expect(units[1]?.progress.batches).toBeGreaterThanOrEqual(2);
  });

  it('a TypeScript unit that throws is rolled back whole (exit 1)', async () => {
    const db = dropped(await freshDatabase('tsfail'));
    const dir = writePlan({
      'migrations/0001_half.ts': `
import { defineUnit, sql } from ${JSON.stringify(api)};
export default defineUnit({
  async up(db) {
    await sql\`CREATE TABLE half (id int)\`.execute(db);
    await sql\`INSERT INTO half VALUES ('not a number')\`.execute(db);
  },
});
`,
    });
    const result = await runCli(['apply', '-d', db.url, '--dir', dir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('invalid input syntax for type integer: "not a number"');
    expect(result.stderr).toContain('in migrations/0001_half.ts');
    const [t] = await query<{ gone: boolean }>(db.url, "SELECT to_regclass('public.half') IS NULL AS gone");
    expect(t?.gone).toBe(true);
  });

  it('a TypeScript file that does not export a definition is a plan error (exit 2)', async () => {
    const db = dropped(await freshDatabase('tsbad'));
    const dir = writePlan({ 'migrations/0001_nothing.ts': 'export const x = 1;\n' });
    const result = await runCli(['apply', '-d', db.url, '--dir', dir]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('migrations/0001_nothing.ts: must default-export defineUnit({...}) or defineBackfill({...})');
  });

  // tenantify installed nowhere near the plan: the units get the running CLI's API, whichever way tsx compiles them.
  it.each([
    ['CommonJS', {}],
    ['an ES module', { 'package.json': '{ "type": "module" }\n' }],
  ])("a unit compiled as %s imports the running tenantify's API, installed or not", async (_, packageJson) => {
    const db = dropped(await freshDatabase('tsapi'));
    const dir = writePlan({
      ...packageJson,
      'migrations/0001_api.ts': `
import { ExitCode, defineUnit, sql } from 'tenantify';
export default defineUnit({
  async up(db, ctx) {
    await sql\`CREATE TABLE api_seen (usage_exit int)\`.execute(db);
    await sql\`INSERT INTO api_seen VALUES (\${ExitCode.usage})\`.execute(db);
    ctx.log('the API is here');
  },
});
`,
    });
    // Run from the plan's directory, as a DBA does (from this checkout, its tsconfig.json maps the name to src/).
    const result = await runCli(['apply', '-d', db.url, '--dir', dir], { cwd: dir });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('0001_api: the API is here');
    const [seen] = await query<{ usage_exit: number }>(db.url, 'SELECT usage_exit FROM api_seen');
    expect(seen?.usage_exit).toBe(2);
  });
});
