import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

describe('apply --dry-run of a batched unit that fails', () => {
  const dropLater = dropAfterAll();

  it('its verify fails: exit 3, and the hint says nothing stayed (not that its work stays done)', async () => {
    const db = dropLater(await freshDatabase('dryb'));
    await query(
      db.url,
      'CREATE TABLE hosts (id bigint PRIMARY KEY, org int); INSERT INTO hosts SELECT g, NULL FROM generate_series(1, 250) g;',
    );
    const dir = writePlan({
      'backfills/0001_fill.sql': [
        '-- tenantify:batch hosts key=id size=100',
        'UPDATE hosts SET org = 1 WHERE id > $1 AND id <= $2;',
        '-- tenantify:verify no host has org 1',
        'SELECT id FROM hosts WHERE org = 1;',
        '',
      ].join('\n'),
    });
    const result = await runCli(['apply', '--dry-run', '--dir', dir, '-d', db.url]);
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toMatch(/unit 0001_fill: verify failed/);
    expect(result.stderr).not.toMatch(/stays done|stay committed/);
    expect(result.stderr).toMatch(
      /a dry run: nothing stays \(its work, batches included, was rolled back with the dry run\) and the ledger records nothing/,
    );
    // Nothing stayed: no row changed, no ledger.
    const [hosts] = await query<{ n: number }>(db.url, 'SELECT count(*)::int AS n FROM hosts WHERE org IS NOT NULL');
    expect(hosts?.n).toBe(0);
    const [ledger] = await query<{ n: number }>(db.url, "SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'tenantify'");
    expect(ledger?.n).toBe(0);
  });
});
