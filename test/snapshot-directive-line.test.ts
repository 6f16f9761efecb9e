import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

describe('-- tenantify:snapshot naming a table that does not exist', () => {
  const dropLater = dropAfterAll();

  it('exit 2 with the file and the directive line; nothing was run', async () => {
    const db = dropLater(await freshDatabase('snapline'));
    await query(db.url, 'CREATE TABLE hosts (id int); INSERT INTO hosts VALUES (1);');
    const dir = writePlan({
      'migrations/0001_x.sql': '-- why: hosts get a tenant\n-- tenantify:snapshot nonexistent_table\nUPDATE hosts SET id = id + 1;\n',
    });
    const result = await runCli(['apply', '--dir', dir, '-d', db.url]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(/0001_x\.sql:2: the snapshot directive names a table that does not exist: nonexistent_table/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    const [row] = await query<{ id: number }>(db.url, 'SELECT id FROM hosts');
    expect(row?.id).toBe(1);
    const [ledger] = await query<{ n: number }>(db.url, "SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'tenantify'");
    expect(ledger?.n).toBe(0);
  });
});
