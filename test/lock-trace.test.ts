import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeLocks, lockModeName, lockSummary, type LockHeld } from '../src/exec/lock-trace.js';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

const fixture = `
  CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);
  CREATE TABLE notes (id serial PRIMARY KEY, body text);
  INSERT INTO users (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 50) g;
  INSERT INTO notes (body) VALUES ('one'), ('two');
  CREATE TABLE audit (id serial PRIMARY KEY, note text);`;

// The sleep after the ALTER keeps its lock for at least 200 ms: the trace must count it to the commit.
const plan = {
  'migrations/0001_tenant_column.sql': '-- tenantify:lock-timeout 5s\nALTER TABLE users ADD COLUMN tenant_id int;\nSELECT pg_sleep(0.2);\n',
  'rollbacks/0001_tenant_column.sql': 'ALTER TABLE users DROP COLUMN tenant_id;\n',
  'migrations/0002_email_index.sql': '-- tenantify:lock-timeout 5s\nCREATE INDEX users_email_idx ON users (email);\n',
  'rollbacks/0002_email_index.sql': 'DROP INDEX users_email_idx;\n',
  'migrations/0003_bigint_ids.sql': '-- tenantify:lock-timeout 5s\nALTER TABLE notes ALTER COLUMN id TYPE bigint;\n',
  'rollbacks/0003_bigint_ids.sql': 'ALTER TABLE notes ALTER COLUMN id TYPE int;\n',
};

interface Traced {
  unit: string;
  locks?: LockHeld[];
}

function lockOn(locks: LockHeld[] | undefined, relation: string, mode: string): LockHeld | undefined {
  return locks?.find((l) => l.relation === relation && l.mode === mode);
}

/** What every traced run must show of the plan above. */
function expectPlanTrace(traced: Traced[]): void {
  const byUnit = new Map(traced.map((t) => [t.unit, t.locks]));
  const added = lockOn(byUnit.get('0001_tenant_column'), 'public.users', 'AccessExclusiveLock');
  expect(added).toBeDefined();
  expect(added?.heldMs).toBeGreaterThanOrEqual(200);
  const indexed = byUnit.get('0002_email_index');
  expect(lockOn(indexed, 'public.users', 'ShareLock')?.heldMs).toBeGreaterThanOrEqual(0);
  expect(lockOn(indexed, 'public.users', 'ShareLock')?.kind).toBe('table');
  // The index the unit creates is its own (nobody sees it before the commit); nothing stronger than SHARE on users.
  expect(indexed?.some((l) => l.relation === 'public.users_email_idx')).toBe(false);
  expect(indexed?.some((l) => l.relation === 'public.users' && l.mode === 'AccessExclusiveLock')).toBe(false);
  const rewritten = lockOn(byUnit.get('0003_bigint_ids'), 'public.notes', 'AccessExclusiveLock');
  expect(rewritten?.rewroteRows).toBe(2);
  // No unit touched audit, nor are the ledger or the catalog in the trace.
  const relations = new Set(traced.flatMap((t) => (t.locks ?? []).map((l) => l.relation.split('.')[1]?.split('_')[0])));
  expect([...relations].sort()).toEqual(['notes', 'users']);
}

describe('lock trace, pure', () => {
  it('names modes as the documentation does', () => {
    expect(lockModeName('AccessExclusiveLock')).toBe('ACCESS EXCLUSIVE');
    expect(lockModeName('ShareUpdateExclusiveLock')).toBe('SHARE UPDATE EXCLUSIVE');
    expect(lockModeName('ShareLock')).toBe('SHARE');
  });

  it('shows the strongest lock per relation, strongest first', () => {
    const locks: LockHeld[] = [
      { relation: 'public.orders_pkey', kind: 'index', mode: 'ShareLock', heldMs: 900 },
      { relation: 'public.orders', kind: 'table', mode: 'ShareLock', heldMs: 800 },
      { relation: 'public.users', kind: 'table', mode: 'AccessShareLock', heldMs: 700 },
      { relation: 'public.users', kind: 'table', mode: 'AccessExclusiveLock', heldMs: 640, rewroteRows: 1200 },
    ];
    expect(describeLocks(locks)).toEqual([
      'ACCESS EXCLUSIVE on public.users for 640 ms (rewrote 1,200 rows)',
      'SHARE on public.orders for 800 ms',
      'SHARE on public.orders_pkey for 900 ms',
    ]);
    expect(lockSummary(locks, 1)).toBe('ACCESS EXCLUSIVE on public.users for 640 ms (rewrote 1,200 rows) and 2 more');
    expect(lockSummary([])).toBe('no lock on an existing table or index');
    expect(lockSummary(undefined)).toMatch(/^not traced/);
  });
});

describe('lock trace', () => {
  const dropped = dropAfterAll();

  it("rehearse shows each unit's locks in its report, its JSON and its JUnit", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lock-trace-'));
    const fixtureFile = join(dir, 'legacy.sql');
    writeFileSync(fixtureFile, fixture);
    const planDir = writePlan(plan);
    const junit = join(dir, 'rehearse.xml');
    const json = await runCli(['rehearse', '--fixture', fixtureFile, '--dir', planDir, '--json', '--junit', junit]);
    expect(json.stderr).not.toMatch(/Error:/);
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout) as { ok: boolean; locks: Traced[] };
    expect(doc.locks.map((t) => t.unit)).toEqual(['0001_tenant_column', '0002_email_index', '0003_bigint_ids']);
    expectPlanTrace(doc.locks);
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(
      /name="0001_tenant_column"[^>]*>\s*<properties>\s*<property name="lock" value="ACCESS EXCLUSIVE on public\.users for \d+ ms"\/>/,
    );
    expect(xml).toMatch(/<system-out>lock: SHARE on public\.users for \d+ ms<\/system-out>/);

    const text = await runCli(['rehearse', '--fixture', fixtureFile, '--dir', planDir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/0001_tenant_column\s+ACCESS EXCLUSIVE on public\.users for \d+ ms/);
    expect(text.stdout).toMatch(/0002_email_index\s+SHARE on public\.users for \d+ ms/);
    expect(text.stdout).toMatch(/0003_bigint_ids\s+ACCESS EXCLUSIVE on public\.notes for \d+ ms \(rewrote 2 rows\)/);
  });

  it('apply --dry-run shows the same locks and changes nothing; a real apply traces nothing', async () => {
    const db = dropped(await freshDatabase('locks'));
    await query(db.url, fixture);
    const planDir = writePlan(plan);
    const dry = await runCli(['apply', '--dry-run', '-d', db.url, '--dir', planDir, '--json']);
    expect(dry.code).toBe(0);
    const units = (JSON.parse(dry.stdout) as { units: { id: string; locks?: LockHeld[] }[] }).units;
    expectPlanTrace(units.map((u) => ({ unit: u.id, ...(u.locks ? { locks: u.locks } : {}) })));
    const [columns] = await query<{ n: number }>(
      db.url,
      "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'tenant_id'",
    );
    expect(columns?.n).toBe(0);

    const dryText = await runCli(['apply', '--dry-run', '-d', db.url, '--dir', planDir]);
    expect(dryText.code).toBe(0);
    expect(dryText.stdout).toMatch(/0001_tenant_column\s+ACCESS EXCLUSIVE on public\.users for \d+ ms/);

    const real = await runCli(['apply', '-d', db.url, '--dir', planDir, '--json', '--no-snapshot']);
    expect(real.code).toBe(0);
    const applied = (JSON.parse(real.stdout) as { units: { id: string; outcome: string; locks?: unknown }[] }).units;
    expect(applied.map((u) => [u.id, u.outcome, u.locks])).toEqual([
      ['0001_tenant_column', 'applied', undefined],
      ['0002_email_index', 'applied', undefined],
      ['0003_bigint_ids', 'applied', undefined],
    ]);
  });
});
