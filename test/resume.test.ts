import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { runCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';
import { killThenResume, uninterrupted } from './support/kill.js';

describe('resuming a non-transactional unit', () => {
  const dropped = dropAfterAll();

  it('starts at the first statement not done, and rebuilds an INVALID index instead of skipping it', async () => {
    const db = dropped(await freshDatabase('nontx'));
    await query(
      db.url,
      "CREATE TABLE users (id int PRIMARY KEY, email text); INSERT INTO users SELECT g, 'u' || (g % 900) FROM generate_series(1, 1000) g;",
    );
    const indexes = `-- tenantify:transaction off
CREATE INDEX CONCURRENTLY users_id_email ON users (id, email);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email_key ON users (email);
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_lower_email ON users (lower(email));
`;
    const first = await runCli(['apply', '-d', db.url, '--dir', writePlan({ 'migrations/0001_indexes.sql': indexes })]);
    expect(first.code).toBe(1);
    expect(first.stderr).toContain('could not create unique index "users_email_key"');
    expect(first.stderr).toContain('at migrations/0001_indexes.sql:3:1');
    expect(first.stderr).toContain('the statements before this one stay done');
    const invalid = await query<{ relname: string; valid: boolean }>(
      db.url,
      "SELECT c.relname, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE 'users_%' ORDER BY 1",
    );
    expect(invalid).toEqual([
      { relname: 'users_email_key', valid: false },
      { relname: 'users_id_email', valid: true },
      { relname: 'users_pkey', valid: true },
    ]);

    // The DBA fixes the data; the first statement (no IF NOT EXISTS) must not run again.
    await query(db.url, "UPDATE users SET email = 'u' || id");
    const second = await runCli(['apply', '-d', db.url, '--dir', writePlan({ 'migrations/0001_indexes.sql': indexes })]);
    expect(second.code).toBe(0);
    expect(second.stderr).toContain('index public.users_email_key is INVALID');
    const after = await query<{ relname: string; valid: boolean }>(
      db.url,
      "SELECT c.relname, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE 'users_%' ORDER BY 1",
    );
    expect(after).toEqual([
      { relname: 'users_email_key', valid: true },
      { relname: 'users_id_email', valid: true },
      { relname: 'users_lower_email', valid: true },
      { relname: 'users_pkey', valid: true },
    ]);
    const events = await query<{ event: string }>(db.url, "SELECT event FROM tenantify.events WHERE unit_id = '0001_indexes' ORDER BY id");
    expect(events.map((e) => e.event)).toEqual([
      'started',
      'statement_done',
      'failed',
      'resumed',
      'invalid_index_dropped',
      'statement_done',
      'statement_done',
      'applied',
    ]);
  });
});

describe('kill -9 during a batched backfill, then resume', () => {
  const rows = 40_000;
  let template = '';
  let drop = async () => {};
  const plan = {
    // No throttle: its duty-cycle pause (as long as each batch) only stretched every walk; the kills
    // land at fractions of the uninterrupted run's time, on batches rather than sleeps.
    'tenantify.config.json': JSON.stringify({ batch: { throttle: 'off' } }),
    'migrations/0001_add_column.sql': 'ALTER TABLE accounts ADD COLUMN organization_id int;\n',
    'backfills/0002_fill.sql': `-- tenantify:batch accounts key=id size=500
UPDATE accounts SET organization_id = id % 97 + 1 WHERE id > $1 AND id <= $2;
-- tenantify:verify every account has an organization
SELECT id FROM accounts WHERE organization_id IS NULL;
`,
  };
  beforeAll(async () => {
    const db = await freshDatabase('tplkill');
    template = db.name;
    drop = db.drop;
    // Gaps in the key, and a trigger that counts every update of every row.
    await query(
      db.url,
      `
      CREATE TABLE accounts (id bigint PRIMARY KEY, name text);
      INSERT INTO accounts SELECT g * 3, 'a' || g FROM generate_series(1, ${rows}) g;
      CREATE TABLE update_counts (id bigint PRIMARY KEY, n int NOT NULL);
      CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO update_counts VALUES (NEW.id, 1) ON CONFLICT (id) DO UPDATE SET n = update_counts.n + 1; RETURN NEW; END $$;
      CREATE TRIGGER count_update AFTER UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION count_update();`,
    );
  });
  afterAll(() => drop());

  it('updates every row exactly once, wherever the kill lands', async () => {
    const dir = writePlan(plan);
    const baseline = await uninterrupted(template, dir);
    expect(baseline.fingerprint['public.update_counts']).toMatch(new RegExp(`^${rows}:`));
    const kills = [0.3, 0.5, 0.7, 0.85].map((f) => Math.round(baseline.durationMs * f));
    const caught: string[] = [];
    for (const delay of kills) {
      const outcome = await killThenResume(template, dir, delay);
      expect(outcome.fingerprint, `killed at ${delay} ms (${outcome.statusesAtKill})`).toEqual(baseline.fingerprint);
      caught.push(outcome.statusesAtKill);
    }
    // At least one kill landed in the middle of the backfill.
    expect(caught).toContain('applied,running');
  });
});
