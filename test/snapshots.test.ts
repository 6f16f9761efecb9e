import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { contentFingerprint, dropAfterAll, freshDatabase, query } from './support/db.js';
import { runCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';

const legacy = `
  CREATE TABLE accounts (id serial PRIMARY KEY, email text NOT NULL, plan text DEFAULT 'free');
  CREATE INDEX accounts_email_idx ON accounts (lower(email));
  ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
  CREATE POLICY accounts_self ON accounts USING (email = current_user);
  CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.plan := coalesce(NEW.plan, 'free'); RETURN NEW; END $$;
  CREATE TRIGGER accounts_touch BEFORE INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION touch();
  INSERT INTO accounts (email) SELECT 'a' || g || '@example.com' FROM generate_series(1, 500) g;
  CREATE TABLE orders (id int PRIMARY KEY, account_id int NOT NULL CONSTRAINT orders_account_fk REFERENCES accounts (id) ON DELETE CASCADE);
  INSERT INTO orders SELECT g, g % 500 + 1 FROM generate_series(1, 800) g;
  CREATE VIEW paying_accounts AS SELECT id, email FROM accounts WHERE plan <> 'free';
  COMMENT ON VIEW paying_accounts IS 'accounts on a paid plan';
  CREATE VIEW paying_domains AS SELECT DISTINCT split_part(email, '@', 2) AS domain FROM paying_accounts;
  CREATE MATERIALIZED VIEW orders_per_plan AS SELECT a.plan, count(*) AS orders FROM orders o JOIN accounts a ON a.id = o.account_id GROUP BY a.plan;`;

const plan = {
  // The UPDATE (of no row here) is what makes this unit's snapshot: adding a column or an index alone takes none.
  'migrations/0001_tier.sql':
    'ALTER TABLE accounts ADD COLUMN tier text;\nCREATE INDEX accounts_tier_idx ON accounts (tier);\nUPDATE accounts SET tier = NULL WHERE tier IS NOT NULL;\n',
  'backfills/0002_fill.sql':
    "UPDATE accounts SET tier = 'gold', email = upper(email) WHERE id % 3 = 0;\nINSERT INTO accounts (email, tier) SELECT 'new' || g, 'new' FROM generate_series(1, 50) g;\n",
};

function schemaDump(url: string): string {
  const out = spawnSync('pg_dump', ['--schema-only', '--exclude-schema=tenantify', '-d', url], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(out.stderr);
  return out.stdout
    .split('\n')
    .filter((l) => !/^\\(un)?restrict /.test(l))
    .join('\n');
}

async function sequenceValue(url: string): Promise<string> {
  const [row] = await query<{ v: string }>(url, 'SELECT last_value::text AS v FROM accounts_id_seq');
  return row?.v ?? '';
}

describe('snapshots', () => {
  const dropped = dropAfterAll();
  async function legacyDb() {
    const db = dropped(await freshDatabase('snap'));
    await query(db.url, legacy);
    return db.url;
  }

  it('are taken before each unit that writes existing tables, owner-only, with a manifest in the ledger', async () => {
    const url = await legacyDb();
    const dir = writePlan(plan);
    const result = await runCli(['apply', '-d', url, '--dir', dir]);
    expect(result.code).toBe(0);
    const manifests = await query<{
      unit_id: string;
      detail: { file: string; tables: string[]; bytes: number; sha256: string; pgDumpVersion: string; serverVersion: string };
    }>(url, "SELECT unit_id, detail FROM tenantify.events WHERE event = 'snapshot_taken' ORDER BY id");
    expect(manifests.map((m) => [m.unit_id, m.detail.tables])).toEqual([
      ['0001_tier', ['public.accounts']],
      ['0002_fill', ['public.accounts']],
    ]);
    for (const { detail } of manifests) {
      expect(detail.file).toBe(
        join(dir, '.tenantify', 'snapshots', detail.file.split('/').slice(-2, -1)[0] as string, `${detail.file.split('/').pop()}`),
      );
      expect(statSync(detail.file).mode & 0o777).toBe(0o600);
      expect(statSync(join(detail.file, '..')).mode & 0o777).toBe(0o700);
      expect(statSync(join(detail.file, '..', '..')).mode & 0o777).toBe(0o700);
      expect(detail.bytes).toBe(statSync(detail.file).size);
      expect(detail.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(detail.pgDumpVersion).toMatch(/^\d+\.\d+/);
    }
    const listed = JSON.parse((await runCli(['snapshots', 'list', '-d', url, '--dir', dir, '--json'])).stdout) as {
      snapshots: { unit: string; present: boolean }[];
    };
    expect(listed.snapshots.map((s) => [s.unit, s.present])).toEqual([
      ['0001_tier', true],
      ['0002_fill', true],
    ]);
  });

  it('restore gives back the exact table: content, indexes, trigger, policy, sequence, incoming foreign keys, and the views built on it', async () => {
    const url = await legacyDb();
    const schemaBefore = schemaDump(url);
    const perPlanBefore = await query(url, 'SELECT * FROM orders_per_plan ORDER BY plan');
    const contentBefore = await contentFingerprint(url);
    const sequenceBefore = await sequenceValue(url);
    const dir = writePlan(plan);
    expect((await runCli(['apply', '-d', url, '--dir', dir])).code).toBe(0);
    expect(await contentFingerprint(url)).not.toEqual(contentBefore);

    const refused = await runCli(['snapshots', 'restore', '0001_tier', '-d', url, '--dir', dir]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('needs --yes without a terminal');

    const restored = await runCli(['snapshots', 'restore', '0001_tier', '-d', url, '--dir', dir, '--yes']);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    expect(schemaDump(url)).toBe(schemaBefore);
    expect(await contentFingerprint(url)).toEqual(contentBefore);
    expect(await sequenceValue(url)).toBe(sequenceBefore);
    const [fk] = await query<{ def: string }>(
      url,
      "SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'orders_account_fk'",
    );
    expect(fk?.def).toBe('FOREIGN KEY (account_id) REFERENCES accounts(id) ON DELETE CASCADE');
    // The views are in the schema dump compared above; the materialized view holds the restored data again.
    expect(schemaBefore).toContain('CREATE VIEW public.paying_domains');
    expect(await query(url, 'SELECT * FROM orders_per_plan ORDER BY plan')).toEqual(perPlanBefore);
    const events = await query<{ event: string }>(url, "SELECT event FROM tenantify.events WHERE unit_id = '0001_tier' ORDER BY id");
    expect(events.map((e) => e.event)).toContain('snapshot_restored');
  });

  it('refuses a restore that would drop what it cannot put back (a function of the row type, a policy of another table), and touches nothing', async () => {
    const url = await legacyDb();
    const dir = writePlan(plan);
    expect((await runCli(['apply', '-d', url, '--dir', dir])).code).toBe(0);
    await query(
      url,
      `
      CREATE FUNCTION account_label(a accounts) RETURNS text LANGUAGE sql AS 'SELECT a.email';
      CREATE POLICY orders_of_paying ON orders USING (account_id IN (SELECT id FROM accounts WHERE plan <> 'free'));`,
    );
    const schema = schemaDump(url);
    const content = await contentFingerprint(url);
    const result = await runCli(['snapshots', 'restore', '0001_tier', '-d', url, '--dir', dir, '--yes']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'restoring the snapshot of 0001_tier would drop what depends on its tables and is not restored with them: function account_label(accounts); policy orders_of_paying on table orders',
    );
    expect(result.stderr).toContain('revert the unit with its rollback file');
    expect(schemaDump(url)).toBe(schema);
    expect(await contentFingerprint(url)).toEqual(content);
    // rollback --from-snapshot checks every unit's snapshot this way before restoring any.
    const rollback = await runCli(['rollback', '--from-snapshot', '--all', '-d', url, '--dir', dir, '--yes']);
    expect(rollback.code).toBe(2);
    expect(rollback.stderr).toContain(
      'would drop what depends on its tables and is not restored with them: function account_label(accounts)',
    );
    expect(schemaDump(url)).toBe(schema);
    expect(await contentFingerprint(url)).toEqual(content);
    const units = await query<{ id: string; status: string }>(url, 'SELECT id, status FROM tenantify.units ORDER BY id');
    expect(units).toEqual([
      { id: '0001_tier', status: 'applied' },
      { id: '0002_fill', status: 'applied' },
    ]);
  });

  it('refuses a corrupt snapshot, naming the file, and touches nothing', async () => {
    const url = await legacyDb();
    const dir = writePlan(plan);
    expect((await runCli(['apply', '-d', url, '--dir', dir])).code).toBe(0);
    const [m] = await query<{ file: string }>(
      url,
      "SELECT detail->>'file' AS file FROM tenantify.events WHERE event = 'snapshot_taken' AND unit_id = '0001_tier'",
    );
    const file = m?.file as string;
    const bytes = readFileSync(file);
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0xff;
    writeFileSync(file, bytes);
    const before = await contentFingerprint(url);
    const result = await runCli(['snapshots', 'restore', '0001_tier', '-d', url, '--dir', dir, '--yes']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`the snapshot of 0001_tier is corrupt: ${file}`);
    expect(await contentFingerprint(url)).toEqual(before);
  });

  it('without pg_dump: exit 2 before anything runs, the database untouched', async () => {
    const url = await legacyDb();
    const dir = writePlan(plan);
    const before = await contentFingerprint(url);
    const empty = mkdtempSync(join(tmpdir(), 'no-pg-dump-'));
    const result = await runCli(['apply', '-d', url, '--dir', dir], { env: { TENANTIFY_PG_BINDIR: empty } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('pg_dump was not found');
    expect(result.stderr).toContain('--no-snapshot');
    expect(await contentFingerprint(url)).toEqual(before);
    const [ledger] = await query<{ n: number }>(url, "SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'tenantify'");
    expect(ledger?.n).toBe(0);

    const skipped = await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot'], { env: { TENANTIFY_PG_BINDIR: empty } });
    expect(skipped.code).toBe(0);
    const events = await query<{ event: string; reason: string }>(
      url,
      "SELECT event, detail->>'reason' AS reason FROM tenantify.events WHERE event LIKE 'snapshot%' ORDER BY id",
    );
    expect(events).toEqual([
      { event: 'snapshot_skipped', reason: '--no-snapshot' },
      { event: 'snapshot_skipped', reason: '--no-snapshot' },
    ]);
  });

  it('rollback --from-snapshot returns the database to exactly the legacy state, newest first', async () => {
    const url = await legacyDb();
    const schemaBefore = schemaDump(url);
    const contentBefore = await contentFingerprint(url);
    const sequenceBefore = await sequenceValue(url);
    const dir = writePlan(plan);
    expect((await runCli(['apply', '-d', url, '--dir', dir])).code).toBe(0);
    const result = await runCli(['rollback', '-d', url, '--dir', dir, '--from-snapshot', '--all', '--yes', '--json']);
    expect(result.code).toBe(0);
    expect((JSON.parse(result.stdout) as { units: { id: string }[] }).units.map((u) => u.id)).toEqual(['0002_fill', '0001_tier']);
    expect(schemaDump(url)).toBe(schemaBefore);
    expect(await contentFingerprint(url)).toEqual(contentBefore);
    expect(await sequenceValue(url)).toBe(sequenceBefore);
    const units = await query<{ id: string; status: string }>(url, 'SELECT id, status FROM tenantify.units ORDER BY id');
    expect(units).toEqual([
      { id: '0001_tier', status: 'rolled_back' },
      { id: '0002_fill', status: 'rolled_back' },
    ]);
    // And the plan applies again.
    expect((await runCli(['apply', '-d', url, '--dir', dir])).code).toBe(0);
  });

  it('rollback --from-snapshot refuses before restoring anything when one snapshot is missing', async () => {
    const url = await legacyDb();
    const dir = writePlan(plan);
    expect((await runCli(['apply', '-d', url, '--dir', dir])).code).toBe(0);
    const [m] = await query<{ file: string }>(
      url,
      "SELECT detail->>'file' AS file FROM tenantify.events WHERE event = 'snapshot_taken' AND unit_id = '0001_tier'",
    );
    const { rmSync } = await import('node:fs');
    rmSync(m?.file as string);
    const before = await contentFingerprint(url);
    const result = await runCli(['rollback', '-d', url, '--dir', dir, '--from-snapshot', '--all', '--yes']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`the snapshot of 0001_tier is missing: ${m?.file}`);
    expect(await contentFingerprint(url)).toEqual(before);
    const units = await query<{ status: string }>(url, 'SELECT status FROM tenantify.units ORDER BY id');
    expect(units.map((u) => u.status)).toEqual(['applied', 'applied']);
  });
  it('a whole-database snapshot leaves the ledger out: restoring it keeps the ledger and records the restore', async () => {
    const url = await legacyDb();
    const dir = writePlan({ 'backfills/0001_wipe.sql': '-- tenantify:snapshot full\nDELETE FROM orders WHERE id % 2 = 0;\n' });
    const contentBefore = await contentFingerprint(url);
    expect((await runCli(['apply', '-d', url, '--dir', dir])).code).toBe(0);
    const eventsBefore = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM tenantify.events');
    const result = await runCli(['snapshots', 'restore', '0001_wipe', '-d', url, '--dir', dir, '--yes']);
    expect(result.stderr).not.toMatch(/this is a bug|\n\s+at /);
    expect(result.code).toBe(0);
    expect(await contentFingerprint(url)).toEqual(contentBefore);
    // The ledger kept everything it had, and gained the restore's own records.
    const [after] = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM tenantify.events');
    expect(after?.n).toBeGreaterThan(eventsBefore[0]?.n ?? 0);
    const [unit] = await query<{ status: string }>(url, "SELECT status FROM tenantify.units WHERE id = '0001_wipe'");
    expect(unit?.status).toBeDefined();
  });
  it('are taken only of what a rollback file cannot give back: changed or lost rows and columns, not catalog-only changes', async () => {
    const url = await legacyDb();
    const dir = writePlan({
      'migrations/0001_catalog_only.sql':
        "ALTER TABLE accounts ADD COLUMN nickname text;\nCREATE INDEX accounts_nickname_idx ON accounts (nickname);\nALTER TABLE orders ENABLE ROW LEVEL SECURITY;\nCREATE POLICY orders_all ON orders USING (true);\nINSERT INTO accounts (email) VALUES ('added@example.com');\n",
      'migrations/0002_retype.sql': 'ALTER TABLE orders ALTER COLUMN id TYPE bigint;\n',
      'migrations/0003_drop.sql':
        'DROP VIEW paying_domains;\nDROP VIEW paying_accounts;\nDROP MATERIALIZED VIEW orders_per_plan;\nDROP TABLE orders;\n',
    });
    const planned = JSON.parse((await runCli(['plan', '--dir', dir, '--json'])).stdout) as { units: { id: string; snapshot: string }[] };
    expect(planned.units.map((u) => [u.id, u.snapshot])).toEqual([
      ['0001_catalog_only', 'none needed (changes no existing row or column: the rollback file reverts it)'],
      ['0002_retype', 'rows or columns changed: orders'],
      ['0003_drop', 'rows or columns changed: orders'],
    ]);
    expect((await runCli(['apply', '-d', url, '--dir', dir])).code).toBe(0);
    const taken = await query<{ unit_id: string; tables: string[] }>(
      url,
      "SELECT unit_id, detail->'tables' AS tables FROM tenantify.events WHERE event = 'snapshot_taken' ORDER BY id",
    );
    expect(taken.map((e) => [e.unit_id, e.tables])).toEqual([
      ['0002_retype', ['public.orders']],
      ['0003_drop', ['public.orders']],
    ]);
  });
});
