/**
 * Snapshots of tables whose names only quoting tells apart: the snapshot holds the table the
 * unit writes, restores that one, and a snapshot that cannot be taken stops the unit first.
 */
import { describe, expect, it } from 'vitest';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { runCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';

const twins = `
  CREATE TABLE "Order" (id int PRIMARY KEY, total int NOT NULL);
  CREATE TABLE "order" (id int PRIMARY KEY, total int NOT NULL);
  INSERT INTO "Order" VALUES (1, 10), (2, 20);
  INSERT INTO "order" VALUES (1, 100), (2, 200);`;

const rows = (url: string, table: string) => query<{ id: number; total: number }>(url, `SELECT id, total FROM ${table} ORDER BY id`);

describe('snapshots of quoted names', () => {
  const dropped = dropAfterAll();

  it('UPDATE "Order" snapshots "Order", and the restore puts back "Order", not order', async () => {
    const { url } = dropped(await freshDatabase('names'));
    await query(url, twins);
    const dir = writePlan({ 'backfills/0001_double.sql': 'UPDATE "Order" SET total = total * 2;\n' });
    expect((await runCli(['apply', '-d', url, '--dir', dir])).code).toBe(0);
    const [manifest] = await query<{ detail: { tables: string[] } }>(
      url,
      "SELECT detail FROM tenantify.events WHERE event = 'snapshot_taken'",
    );
    expect(manifest?.detail.tables).toEqual(['public."Order"']);

    // Written after the unit: the restore of "Order" must leave it.
    await query(url, 'INSERT INTO "order" VALUES (3, 300)');
    const restored = await runCli(['snapshots', 'restore', '0001_double', '-d', url, '--dir', dir, '--yes']);
    expect(restored.code).toBe(0);
    expect(await rows(url, '"Order"')).toEqual([
      { id: 1, total: 10 },
      { id: 2, total: 20 },
    ]);
    expect(await rows(url, '"order"')).toEqual([
      { id: 1, total: 100 },
      { id: 2, total: 200 },
      { id: 3, total: 300 },
    ]);
  });

  it('DELETE FROM "Xb" without a lower-case twin is snapshotted, and rollback --from-snapshot gives the rows back', async () => {
    const { url } = dropped(await freshDatabase('names'));
    await query(url, 'CREATE TABLE "Xb" (id int PRIMARY KEY); INSERT INTO "Xb" SELECT generate_series(1, 5);');
    const dir = writePlan({ 'backfills/0001_purge.sql': 'DELETE FROM "Xb" WHERE id > 2;\n', 'rollbacks/0001_purge.sql': 'SELECT 1;\n' });
    expect((await runCli(['apply', '-d', url, '--dir', dir])).code).toBe(0);
    expect((await runCli(['rollback', '--from-snapshot', '--all', '-d', url, '--dir', dir, '--yes'])).code).toBe(0);
    expect((await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM "Xb"'))[0]?.n).toBe(5);
  });

  it('a snapshot plan promised that apply cannot take fails the unit before its body: exit 1, its code in the ledger, nothing run', async () => {
    const { url } = dropped(await freshDatabase('names'));
    await query(url, 'CREATE TABLE xb (id int PRIMARY KEY)');
    // Outside a transaction, the first statement would stay done if the body ran.
    const dir = writePlan({
      'backfills/0001_purge.sql': '-- tenantify:transaction off\nCREATE TABLE side_effect (id int);\nDELETE FROM "XB";\n',
    });
    const planned = await runCli(['plan', '-d', url, '--dir', dir]);
    expect(planned.stdout).toContain('rows or columns changed: "XB"');
    const result = await runCli(['apply', '-d', url, '--dir', dir, '--json']);
    expect(result.code).toBe(1);
    const doc = JSON.parse(result.stdout) as { error: { code: string; exitCode: number } };
    expect(doc.error).toMatchObject({ code: 'snapshot-table-missing', exitCode: 1 });
    const [unit] = await query<{ status: string; error: { code: string } }>(
      url,
      "SELECT status, error FROM tenantify.units WHERE id = '0001_purge'",
    );
    expect(unit).toMatchObject({ status: 'failed', error: { code: 'snapshot-table-missing' } });
    expect(await query(url, "SELECT 1 FROM pg_class WHERE relname = 'side_effect'")).toEqual([]);
  });
});
