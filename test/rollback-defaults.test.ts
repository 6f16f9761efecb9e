import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

const plan: Record<string, string> = {};
for (const n of [1, 2, 3]) {
  const id = `000${n}_table_${n}`;
  plan[`migrations/${id}.sql`] = `CREATE TABLE t${n} (id int);\n`;
  plan[`rollbacks/${id}.sql`] = `DROP TABLE t${n};\n`;
}

async function statuses(url: string): Promise<Record<string, string>> {
  const rows = await query<{ id: string; status: string }>(url, 'SELECT id, status FROM tenantify.units ORDER BY id');
  return Object.fromEntries(rows.map((r) => [r.id, r.status]));
}

describe('rollback without --steps or --to', () => {
  const dropLater = dropAfterAll();

  it('reverts the newest unit alone; --all reverts every one; two of --steps, --to, --all are refused', async () => {
    const db = dropLater(await freshDatabase('rbdefault'));
    const dir = writePlan(plan);
    expect((await runCli(['apply', '--dir', dir, '-d', db.url, '--no-snapshot'])).code).toBe(0);

    const one = await runCli(['rollback', '--dir', dir, '-d', db.url, '--yes', '--json']);
    expect(one.code, one.stderr).toBe(0);
    expect(JSON.parse(one.stdout).units.map((u: { id: string }) => u.id)).toEqual(['0003_table_3']);
    expect(await statuses(db.url)).toEqual({ '0001_table_1': 'applied', '0002_table_2': 'applied', '0003_table_3': 'rolled_back' });

    const both = await runCli(['rollback', '--dir', dir, '-d', db.url, '--yes', '--all', '--steps', '1']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('pass one of --steps, --to and --all');
    expect(await statuses(db.url)).toEqual({ '0001_table_1': 'applied', '0002_table_2': 'applied', '0003_table_3': 'rolled_back' });

    const all = await runCli(['rollback', '--dir', dir, '-d', db.url, '--yes', '--all', '--json']);
    expect(all.code).toBe(0);
    expect(JSON.parse(all.stdout).units.map((u: { id: string }) => u.id)).toEqual(['0002_table_2', '0001_table_1']);
    expect(Object.values(await statuses(db.url))).toEqual(['rolled_back', 'rolled_back', 'rolled_back']);
  });

  it('--to checks drift only on the units it reverts: an edited earlier unit does not block it, but blocks --all', async () => {
    const db = dropLater(await freshDatabase('rbdrift'));
    expect((await runCli(['apply', '--dir', writePlan(plan), '-d', db.url, '--no-snapshot'])).code).toBe(0);
    const edited = writePlan({ ...plan, 'migrations/0001_table_1.sql': 'CREATE TABLE t1 (id bigint);\n' });

    const all = await runCli(['rollback', '--dir', edited, '-d', db.url, '--yes', '--all']);
    expect(all.code).toBe(5);
    expect(all.stderr).toContain('drift: applied unit 0001_table_1 has changed');
    expect(Object.values(await statuses(db.url))).toEqual(['applied', 'applied', 'applied']);

    const to = await runCli(['rollback', '--dir', edited, '-d', db.url, '--yes', '--to', '0001_table_1']);
    expect(to.code, to.stderr).toBe(0);
    expect(await statuses(db.url)).toEqual({ '0001_table_1': 'applied', '0002_table_2': 'rolled_back', '0003_table_3': 'rolled_back' });
  });
});
