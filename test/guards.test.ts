import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { guardRegressions, median } from '../src/exec/guards.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { runCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';

describe('guardRegressions', () => {
  const guard = { name: 'lookup', sql: 'SELECT 1' };
  const timing = (medianMs: number) => [{ name: 'lookup', medianMs, samplesMs: [medianMs] }];

  it('flags a guard slower than its threshold (20% by default)', () => {
    expect(guardRegressions([guard], timing(10), timing(12.5))).toEqual([{ name: 'lookup', beforeMs: 10, afterMs: 12.5, threshold: 0.2 }]);
    expect(guardRegressions([guard], timing(10), timing(11.9))).toEqual([]);
    expect(guardRegressions([{ ...guard, threshold: 0.5 }], timing(10), timing(14))).toEqual([]);
  });

  it('ignores sub-millisecond jitter, whatever its ratio', () => {
    expect(guardRegressions([guard], timing(0.03), timing(0.3))).toEqual([]);
    expect(guardRegressions([guard], timing(0.03), timing(12))).toHaveLength(1);
  });

  it('takes the median', () => {
    expect(median([5, 1, 100])).toBe(5);
    expect(median([4, 1, 2, 100])).toBe(3);
  });
});

describe('apply with guards', () => {
  const dropped = dropAfterAll();

  const config = {
    guards: [{ name: 'account lookup by email', sql: "SELECT id FROM accounts WHERE email = 'user123456@example.com'", repetitions: 5 }],
  };
  const plan = {
    'migrations/0001_add_plan.sql': "ALTER TABLE accounts ADD COLUMN plan text NOT NULL DEFAULT 'free';\n",
    'rollbacks/0001_add_plan.sql': 'ALTER TABLE accounts DROP COLUMN plan;\n',
    'migrations/0002_drop_email_index.sql': 'DROP INDEX accounts_email_idx;\n',
    'rollbacks/0002_drop_email_index.sql': 'CREATE INDEX accounts_email_idx ON accounts (email);\n',
    'migrations/0003_later.sql': 'CREATE TABLE later (id int);\n',
    'rollbacks/0003_later.sql': 'DROP TABLE later;\n',
  };

  async function accounts(): Promise<string> {
    const d = dropped(await freshDatabase('guards'));
    // 200k rows: a point lookup by index takes well under a millisecond, a sequential scan many.
    await query(
      d.url,
      `CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);
      INSERT INTO accounts SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 200000) g;
      CREATE INDEX accounts_email_idx ON accounts (email);
      ANALYZE accounts;`,
    );
    return d.url;
  }

  function planDir(files: Record<string, string>): string {
    const dir = writePlan(files);
    writeFileSync(join(dir, 'tenantify.config.json'), JSON.stringify(config));
    return dir;
  }

  it('reverts a unit that drops the index a guard relies on, fails the run (exit 1), and records it all', async () => {
    const url = await accounts();
    const result = await runCli(['apply', '-d', url, '--dir', planDir(plan), '--no-snapshot']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('unit 0002_drop_email_index tripped a guard');
    expect(result.stderr).toMatch(/guard "account lookup by email": [\d.]+ ms before the run, [\d.]+ ms now \(\+\d+%, threshold 20%\)/);
    expect(result.stderr).toContain('0002_drop_email_index was reverted with rollbacks/0002_drop_email_index.sql');
    expect(
      await query(url, "SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indexrelid = 'accounts_email_idx'::regclass"),
    ).toEqual([{ name: 'accounts_email_idx' }]);
    expect(await query(url, 'SELECT id, status FROM tenantify.units ORDER BY id')).toEqual([
      { id: '0001_add_plan', status: 'applied' },
      { id: '0002_drop_email_index', status: 'rolled_back' },
    ]);
    const events = await query<{ unit_id: string | null; event: string }>(
      url,
      "SELECT unit_id, event FROM tenantify.events WHERE event LIKE 'guard%' OR event LIKE 'roll%' ORDER BY id",
    );
    expect(events).toEqual([
      { unit_id: null, event: 'guards_baseline' },
      { unit_id: '0001_add_plan', event: 'guards_checked' },
      { unit_id: '0002_drop_email_index', event: 'guards_checked' },
      { unit_id: '0002_drop_email_index', event: 'guard_regressed' },
      { unit_id: '0002_drop_email_index', event: 'rollback_started' },
      { unit_id: '0002_drop_email_index', event: 'rolled_back' },
    ]);
  });

  it('with --auto-rollback, also reverts the units before it in the run', async () => {
    const url = await accounts();
    const result = await runCli(['apply', '-d', url, '--dir', planDir(plan), '--no-snapshot', '--auto-rollback']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('--auto-rollback reverted 0001_add_plan');
    expect(await query(url, "SELECT 1 FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'plan'")).toEqual([]);
    expect(await query(url, 'SELECT id, status FROM tenantify.units ORDER BY id')).toEqual([
      { id: '0001_add_plan', status: 'rolled_back' },
      { id: '0002_drop_email_index', status: 'rolled_back' },
    ]);
  });

  it('lets units through that keep the guarded query fast', async () => {
    const url = await accounts();
    const { ['migrations/0002_drop_email_index.sql']: _a, ['rollbacks/0002_drop_email_index.sql']: _b, ...harmless } = plan;
    const result = await runCli(['apply', '-d', url, '--dir', planDir(harmless), '--no-snapshot']);
    expect(result.stderr).toContain('guards: account lookup by email');
    expect(result.code).toBe(0);
    const checked = await query<{ unit_id: string }>(
      url,
      "SELECT unit_id FROM tenantify.events WHERE event = 'guards_checked' ORDER BY id",
    );
    expect(checked.map((e) => e.unit_id)).toEqual(['0001_add_plan', '0003_later']);
  });
});
