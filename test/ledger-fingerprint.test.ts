import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

const unitA = '-- the table a\nCREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\n';
// The same statements: another comment, a BOM, CRLF line endings, other spacing.
const cosmetic =
  '\uFEFF-- the table a, with its first row (reworded)\r\nCREATE   TABLE a (id int);\r\n\r\nINSERT INTO a\r\n   VALUES (1);   -- one row\r\n';
const changed = '-- the table a\nCREATE TABLE a (id int);\nINSERT INTO a VALUES (2);\n';

describe("the ledger's statements fingerprint", () => {
  const dropLater = dropAfterAll();

  it('an edit of comments, whitespace, CRLF or a BOM is not drift (plan notes it); a changed statement is', async () => {
    const db = dropLater(await freshDatabase('fp'));
    const dir = writePlan({ 'migrations/0001_a.sql': unitA });
    const first = await runCli(['apply', '--dir', dir, '-d', db.url, '--no-snapshot']);
    expect(first.code, first.stderr).toBe(0);
    const [row] = await query<{ fingerprint: string | null; checksum: string }>(
      db.url,
      "SELECT fingerprint, checksum FROM tenantify.units WHERE id = '0001_a'",
    );
    expect(row?.fingerprint).toMatch(/^[0-9a-f]{16,}$/);

    writeFileSync(join(dir, 'migrations/0001_a.sql'), cosmetic);
    writeFileSync(join(dir, 'migrations/0002_b.sql'), 'CREATE TABLE b (id int);\n');
    const plan = await runCli(['plan', '--dir', dir, '-d', db.url]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/statements unchanged/);
    const cosmeticApply = await runCli(['apply', '--dir', dir, '-d', db.url, '--no-snapshot']);
    expect(cosmeticApply.code, cosmeticApply.stderr).toBe(0);
    const units = await query<{ id: string; status: string }>(db.url, 'SELECT id, status FROM tenantify.units ORDER BY id');
    expect(units).toEqual([
      { id: '0001_a', status: 'applied' },
      { id: '0002_b', status: 'applied' },
    ]);

    writeFileSync(join(dir, 'migrations/0001_a.sql'), changed);
    writeFileSync(join(dir, 'migrations/0003_c.sql'), 'CREATE TABLE c (id int);\n');
    const drift = await runCli(['apply', '--dir', dir, '-d', db.url, '--no-snapshot']);
    expect(drift.code).toBe(5);
    expect(drift.stderr).toMatch(/drift: applied unit 0001_a has changed/);
    const [c] = await query<{ n: number }>(db.url, "SELECT count(*)::int AS n FROM pg_class WHERE relname = 'c'");
    expect(c?.n).toBe(0);
  });

  it('a ledger of version 1 is upgraded in place: rows of before keep no fingerprint, new records have one', async () => {
    const db = dropLater(await freshDatabase('fpup'));
    const dir = writePlan({ 'migrations/0001_a.sql': unitA });
    expect((await runCli(['apply', '--dir', dir, '-d', db.url, '--no-snapshot'])).code).toBe(0);
    // The ledger as version 1 wrote it.
    await query(
      db.url,
      "ALTER TABLE tenantify.units DROP COLUMN fingerprint; UPDATE tenantify.meta SET value = '1' WHERE key = 'ledger_version'",
    );

    writeFileSync(join(dir, 'migrations/0002_b.sql'), 'CREATE TABLE b (id int);\n');
    const upgraded = await runCli(['apply', '--dir', dir, '-d', db.url, '--no-snapshot']);
    expect(upgraded.code, upgraded.stderr).toBe(0);
    const [meta] = await query<{ value: string }>(db.url, "SELECT value FROM tenantify.meta WHERE key = 'ledger_version'");
    expect(meta?.value).toBe('2');
    const rows = await query<{ id: string; has: boolean }>(
      db.url,
      'SELECT id, fingerprint IS NOT NULL AS has FROM tenantify.units ORDER BY id',
    );
    expect(rows).toEqual([
      { id: '0001_a', has: false },
      { id: '0002_b', has: true },
    ]);
    // Without a recorded fingerprint, the edited file is drift as before.
    writeFileSync(join(dir, 'migrations/0001_a.sql'), cosmetic);
    expect((await runCli(['apply', '--dir', dir, '-d', db.url, '--no-snapshot'])).code).toBe(5);
  });

  it('repair on a ledger of version 1 upgrades it and records the fingerprint with the new checksum', async () => {
    const db = dropLater(await freshDatabase('fprep'));
    const dir = writePlan({ 'migrations/0001_a.sql': unitA });
    expect((await runCli(['apply', '--dir', dir, '-d', db.url, '--no-snapshot'])).code).toBe(0);
    await query(
      db.url,
      "ALTER TABLE tenantify.units DROP COLUMN fingerprint; UPDATE tenantify.meta SET value = '1' WHERE key = 'ledger_version'",
    );
    writeFileSync(join(dir, 'migrations/0001_a.sql'), cosmetic);
    const repaired = await runCli(['repair', '0001_a', '--reason', 'reworded the comment', '--dir', dir, '-d', db.url]);
    expect(repaired.code, repaired.stderr).toBe(0);
    const [row] = await query<{ has: boolean }>(db.url, "SELECT fingerprint IS NOT NULL AS has FROM tenantify.units WHERE id = '0001_a'");
    expect(row?.has).toBe(true);
    // From now on an edit that changes no statement is not drift.
    writeFileSync(join(dir, 'migrations/0001_a.sql'), unitA);
    expect((await runCli(['apply', '--dir', dir, '-d', db.url, '--no-snapshot'])).code).toBe(0);
  });
});
