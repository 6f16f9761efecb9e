/**
 * Fleets against real databases: 8+ targets on the suite's throwaway server, driven by the
 * built CLI as a DBA would (`--targets FILE`), every URL carrying a password that must never
 * be printed.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentFingerprint, freshDatabase, holdGate, query, serverUrl, until } from './support/db.js';
import { runCli, startCli, type CliResult } from './support/cli.js';
import { schemaDump } from './support/dump.js';
import { writePlan } from './support/plan-dir.js';
import pg from 'pg';
import { applyFleet, parseTargets, statusFleet, verify } from '../src/index.js';
import { lockKey } from '../src/db/lock.js';

const password = `pw-${randomBytes(6).toString('hex')}`;
const role = `fleet_${randomBytes(4).toString('hex')}`;

/** The legacy schema every target starts from: projects name their account, nothing names a tenant. */
const legacy = `
  CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL);
  INSERT INTO accounts SELECT g, 'account ' || g FROM generate_series(1, 20) g;
  CREATE TABLE projects (id int PRIMARY KEY, account_id int, title text);
  INSERT INTO projects SELECT g, g % 20 + 1, 'project ' || g FROM generate_series(1, 600) g;
  CREATE TABLE update_counts (id int PRIMARY KEY, n int NOT NULL);
  CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO update_counts VALUES (NEW.id, 1) ON CONFLICT (id) DO UPDATE SET n = update_counts.n + 1; RETURN NEW; END $$;
  CREATE TRIGGER count_update AFTER UPDATE ON projects FOR EACH ROW EXECUTE FUNCTION count_update();`;

const plan = {
  'tenantify.config.json': JSON.stringify({ batch: { parallel: 4 } }),
  'migrations/0001_organizations.sql': `CREATE TABLE organizations (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO organizations SELECT id, name FROM accounts;
-- tenantify:verify every account is an organization
SELECT a.id FROM accounts a LEFT JOIN organizations o USING (id) WHERE o.id IS NULL;
`,
  'migrations/0002_projects_organization.sql': 'ALTER TABLE projects ADD COLUMN organization_id int;\n',
  'backfills/0003_projects_organization.sql': `-- tenantify:batch projects key=id size=40
UPDATE projects SET organization_id = account_id WHERE id > $1 AND id <= $2;
-- tenantify:verify every project has an organization
SELECT id FROM projects WHERE organization_id IS NULL;
`,
  'migrations/0004_projects_organization_fk.sql': `ALTER TABLE projects ADD CONSTRAINT projects_organization_fk FOREIGN KEY (organization_id) REFERENCES organizations (id);
`,
  'rollbacks/0001_organizations.sql': 'DROP TABLE organizations;\n',
  'rollbacks/0002_projects_organization.sql': 'ALTER TABLE projects DROP COLUMN organization_id;\n',
  'rollbacks/0003_projects_organization.sql': 'UPDATE projects SET organization_id = NULL;\n',
  'rollbacks/0004_projects_organization_fk.sql': 'ALTER TABLE projects DROP CONSTRAINT projects_organization_fk;\n',
};

/** The backfill's verify is NOT the gate: the trigger counts updates; the FK unit fails on a project of a missing account. */
const breakData = "INSERT INTO projects VALUES (9999, 404, 'orphan')";
const fixData = 'DELETE FROM projects WHERE id = 9999; DELETE FROM update_counts WHERE id = 9999';

let template = '';
let dropTemplate = async (): Promise<void> => {};
/** What one target looks like once the whole plan applied, from a plain `apply -d` on a copy. */
let upgraded: Record<string, string> = {};
let upgradedShape = '';
let legacyShape = '';

function withPassword(url: string): string {
  const u = new URL(url);
  u.username = role;
  u.password = password;
  return u.toString();
}

interface Fleet {
  names: string[];
  /** The databases' own names. */
  databases: string[];
  urls: Record<string, string>;
  file: string;
  drop(): Promise<void>;
}

/** n copies of the legacy template, and a targets file naming them (`name URL`, with a password in each URL). */
async function fleetOf(n: number, extraLines: string[] = []): Promise<Fleet> {
  const dbs = await Promise.all(Array.from({ length: n }, () => freshDatabase('fleet', template)));
  const names = dbs.map((_, i) => `t${i + 1}`);
  const urls = Object.fromEntries(dbs.map((db, i) => [names[i], withPassword(db.url)]));
  const lines = ['# the test fleet', ...names.map((name, i) => (i === 1 ? urls[name] : `${name} ${urls[name]}`)), ...extraLines];
  if (n > 1) {
    // The second line is a bare URL: its database names it.
    names[1] = dbs[1]?.name ?? '';
    urls[names[1]] = withPassword(dbs[1]?.url ?? '');
  }
  const file = join(writePlan({}), 'targets.txt');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return { names, databases: dbs.map((db) => db.name), urls, file, drop: async () => void (await Promise.all(dbs.map((db) => db.drop()))) };
}

function noPassword(...results: CliResult[]): void {
  for (const r of results) {
    expect(r.stdout).not.toContain(password);
    expect(r.stderr).not.toContain(password);
  }
}

interface Row {
  name: string;
  status: string;
  applied: number | null;
  pending: number | null;
  unit: string | null;
  error: { code: string; exitCode: number } | null;
  ran: string[];
  held?: string;
  checks?: { failed: number; total: number };
}

function rowsOf(result: CliResult): Record<string, Row> {
  const doc = JSON.parse(result.stdout) as { targets: Row[] };
  return Object.fromEntries(doc.targets.map((t) => [t.name, t]));
}

/** The schema's shape, read from the catalog (faster than pg_dump where many databases are compared): columns, constraints, indexes, triggers. */
async function catalogFingerprint(url: string): Promise<string> {
  const [row] = await query<{ shape: string }>(
    url,
    `
    SELECT concat_ws(E'\n',
      (SELECT string_agg(format('%s.%s %s %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull), E'\n' ORDER BY c.relname, a.attnum)
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped),
      (SELECT string_agg(format('%s %s', conname, pg_get_constraintdef(oid)), E'\n' ORDER BY conname) FROM pg_constraint WHERE connamespace = 'public'::regnamespace),
      (SELECT string_agg(indexdef, E'\n' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public'),
      (SELECT string_agg(tgname, E'\n' ORDER BY tgname) FROM pg_trigger JOIN pg_class c ON c.oid = tgrelid WHERE NOT tgisinternal AND c.relnamespace = 'public'::regnamespace)) AS shape`,
  );
  return row?.shape ?? '';
}

async function ledgerRows(url: string): Promise<unknown[]> {
  const [exists] = await query<{ ok: boolean }>(url, "SELECT to_regclass('tenantify.units') IS NOT NULL AS ok");
  if (!exists?.ok) return [];
  return query(url, 'SELECT id, status, applied_at FROM tenantify.units ORDER BY id');
}

beforeAll(async () => {
  await query(serverUrl(), `CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD '${password}'`);
  const db = await freshDatabase('fleettpl');
  template = db.name;
  dropTemplate = db.drop;
  await query(db.url, legacy);
  legacyShape = await catalogFingerprint(db.url);
  const reference = await freshDatabase('fleetref', template);
  try {
    const applied = await runCli(['apply', '-d', withPassword(reference.url), '--dir', writePlan(plan), '--no-snapshot']);
    expect(applied.code, applied.stderr).toBe(0);
    upgraded = await contentFingerprint(reference.url);
    upgradedShape = await catalogFingerprint(reference.url);
  } finally {
    await reference.drop();
  }
  // Every project updated exactly once by the backfill.
  expect(upgraded['public.update_counts']).toMatch(/^600:/);
});

afterAll(async () => {
  await dropTemplate();
  await query(serverUrl(), `DROP ROLE IF EXISTS ${role}`);
});

describe('apply --targets', () => {
  it('a failing canary stops the fleet: every other target is untouched', async () => {
    const fleet = await fleetOf(8);
    try {
      const canary = fleet.names[0] as string;
      await query(fleet.urls[canary] as string, breakData);
      // The other targets are copies of one template, untouched since: one pg_dump is the schema each of them had.
      const before = schemaDump(fleet.urls[fleet.names[1] as string] as string);
      const result = await runCli([
        'apply',
        '--targets',
        fleet.file,
        '--dir',
        writePlan(plan),
        '--no-snapshot',
        '--canary',
        '1',
        '--parallel',
        '4',
        '--json',
      ]);
      noPassword(result);
      expect(result.code, result.stderr).toBe(1);
      const rows = rowsOf(result);
      expect(rows[canary]).toMatchObject({
        status: 'failed',
        applied: 3,
        pending: 1,
        unit: '0004_projects_organization_fk',
        error: { code: 'unit-failed', exitCode: 1 },
      });
      for (const name of fleet.names.slice(1)) {
        expect(rows[name], name).toMatchObject({ status: 'skipped', held: 'canary-failed', error: null, ran: [] });
        expect(schemaDump(fleet.urls[name] as string), name).toBe(before);
        // Not even a ledger was made there.
        expect(await ledgerRows(fleet.urls[name] as string), name).toEqual([]);
      }
      // Without a canary, --on-error stop (the default) starts no target after the first failure.
      const stopped = await runCli(['apply', '--targets', fleet.file, '--dir', writePlan(plan), '--no-snapshot', '--json']);
      expect(stopped.code, stopped.stderr).toBe(1);
      const stoppedRows = rowsOf(stopped);
      expect(stoppedRows[canary]).toMatchObject({ status: 'failed', error: { code: 'unit-failed' } });
      for (const name of fleet.names.slice(1)) {
        expect(stoppedRows[name], name).toMatchObject({ status: 'skipped', held: 'stopped-on-error' });
        expect(await ledgerRows(fleet.urls[name] as string), name).toEqual([]);
      }
    } finally {
      await fleet.drop();
    }
  });

  it('with --on-error continue, a broken and an unreachable target are reported and the others are upgraded; a fixed target then finishes alone', async () => {
    const unreachable = `lost postgres://${role}:${password}@127.0.0.1:1/lost`;
    const fleet = await fleetOf(8, [unreachable]);
    try {
      const dir = writePlan(plan);
      const broken = fleet.names[3] as string;
      await query(fleet.urls[broken] as string, breakData);
      // Connections of the fleet's sessions, sampled while it runs: --parallel 3 caps them although the config asks 4 backfill workers.
      const sampling = { on: true, max: 0 };
      const sampler = (async () => {
        while (sampling.on) {
          const [row] = await query<{ n: number }>(
            serverUrl(),
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'tenantify apply%' AND datname = ANY($1)",
            [fleet.databases],
          );
          sampling.max = Math.max(sampling.max, row?.n ?? 0);
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      const first = await runCli(['apply', '--targets', fleet.file, '--dir', dir, '--parallel', '3', '--on-error', 'continue', '--json']);
      sampling.on = false;
      await sampler;
      noPassword(first);
      expect(sampling.max).toBeGreaterThan(0);
      expect(sampling.max).toBeLessThanOrEqual(3);
      const rows = rowsOf(first);
      expect(rows[broken]).toMatchObject({
        status: 'failed',
        pending: 1,
        unit: '0004_projects_organization_fk',
        error: { code: 'unit-failed', exitCode: 1 },
      });
      expect(rows['lost']).toMatchObject({
        status: 'unreachable',
        applied: null,
        pending: null,
        error: { code: 'connection-failed', exitCode: 2 },
      });
      // The worst target's exit code: the unreachable one's 2 (nothing touched there) over the failed unit's 1.
      expect(first.code).toBe(2);
      const others = fleet.names.filter((n) => n !== broken);
      for (const name of others) {
        expect(rows[name], name).toMatchObject({ status: 'up-to-date', applied: 4, pending: 0, error: null });
        expect(await contentFingerprint(fleet.urls[name] as string), name).toEqual(upgraded);
        expect(await catalogFingerprint(fleet.urls[name] as string), name).toBe(upgradedShape);
      }
      // Run numbers repeat across targets: each target's snapshots have a directory of their own.
      expect(existsSync(join(dir, '.tenantify/snapshots', others[0] as string, '1'))).toBe(true);

      // The DBA fixes the broken target's data and runs the same command again.
      const othersBefore = await Promise.all(
        others.map(async (n) => [
          await catalogFingerprint(fleet.urls[n] as string),
          await contentFingerprint(fleet.urls[n] as string),
          await ledgerRows(fleet.urls[n] as string),
        ]),
      );
      await query(fleet.urls[broken] as string, fixData);
      const second = await runCli(['apply', '--targets', fleet.file, '--dir', dir, '--parallel', '3', '--on-error', 'continue', '--json']);
      noPassword(second);
      const again = rowsOf(second);
      expect(again[broken]).toMatchObject({
        status: 'up-to-date',
        applied: 4,
        pending: 0,
        ran: ['0004_projects_organization_fk'],
        error: null,
      });
      expect(await contentFingerprint(fleet.urls[broken] as string)).toEqual(upgraded);
      for (const name of others) expect(again[name], name).toMatchObject({ status: 'up-to-date', ran: [] });
      const othersAfter = await Promise.all(
        others.map(async (n) => [
          await catalogFingerprint(fleet.urls[n] as string),
          await contentFingerprint(fleet.urls[n] as string),
          await ledgerRows(fleet.urls[n] as string),
        ]),
      );
      expect(othersAfter).toEqual(othersBefore);
      expect(second.code).toBe(2);
    } finally {
      await fleet.drop();
    }
  });

  it('--dry-run runs each target in a rolled-back transaction and reports it; nothing changes', async () => {
    const fleet = await fleetOf(8);
    try {
      const before = await Promise.all(fleet.names.map((n) => catalogFingerprint(fleet.urls[n] as string)));
      // Transactional units only: a dry run cannot hold a batched backfill in one transaction.
      const dry = await runCli([
        'apply',
        '--targets',
        fleet.file,
        '--dir',
        writePlan(plan),
        '--dry-run',
        '--to',
        '0002_projects_organization',
        '--parallel',
        '4',
        '--json',
      ]);
      noPassword(dry);
      expect(dry.code, dry.stderr).toBe(0);
      const rows = rowsOf(dry);
      for (const name of fleet.names)
        expect(rows[name], name).toMatchObject({
          status: 'pending',
          applied: 0,
          pending: 4,
          ran: ['0001_organizations', '0002_projects_organization'],
          error: null,
        });
      expect(await Promise.all(fleet.names.map((n) => catalogFingerprint(fleet.urls[n] as string)))).toEqual(before);
      for (const name of fleet.names) expect(await ledgerRows(fleet.urls[name] as string)).toEqual([]);
    } finally {
      await fleet.drop();
    }
  });
});

describe('verify, status and rollback --targets', () => {
  it("agree with each target's own ledger", async () => {
    const fleet = await fleetOf(8);
    try {
      const dir = writePlan(plan);
      const applied = await runCli(['apply', '--targets', fleet.file, '--dir', dir, '--no-snapshot', '--parallel', '4', '--json']);
      expect(applied.code, applied.stderr).toBe(0);
      // Two targets stand elsewhere: one rolled back a unit by itself, one had its data changed under a verify query.
      const [rolled, violated] = [fleet.names[2] as string, fleet.names[5] as string];
      expect((await runCli(['rollback', '-d', fleet.urls[rolled] as string, '--dir', dir, '--yes'])).code).toBe(0);
      await query(
        fleet.urls[violated] as string,
        'ALTER TABLE projects DROP CONSTRAINT projects_organization_fk; UPDATE projects SET organization_id = NULL WHERE id = 7',
      );

      const status = await runCli(['status', '--targets', fleet.file, '--dir', dir, '--parallel', '4', '--json']);
      const verified = await runCli(['verify', '--targets', fleet.file, '--dir', dir, '--parallel', '4', '--json']);
      noPassword(status, verified);
      expect(status.code, status.stderr).toBe(0);
      expect(verified.code).toBe(3);
      const [statusRows, verifyRows] = [rowsOf(status), rowsOf(verified)];
      for (const name of fleet.names) {
        const url = fleet.urls[name] as string;
        // The target's own ledger, and its own verify (the API `tenantify verify -d` runs).
        const [own] = await query<{ applied: number }>(
          url,
          "SELECT count(*) FILTER (WHERE status = 'applied')::int AS applied FROM tenantify.units",
        );
        expect(statusRows[name], name).toMatchObject({ applied: own?.applied, pending: 4 - (own?.applied ?? 0), error: null });
        const ownVerify = await verify({ dir, url });
        expect(verifyRows[name]?.checks, name).toEqual({
          failed: ownVerify.checks.filter((c) => !c.ok).length,
          total: ownVerify.checks.length,
        });
        expect(verifyRows[name]?.status === 'violations', name).toBe(!ownVerify.ok);
      }
      expect(statusRows[rolled]).toMatchObject({ status: 'pending', applied: 3, pending: 1, unit: '0004_projects_organization_fk' });
      expect(verifyRows[violated]).toMatchObject({ status: 'violations', error: { code: 'violations', exitCode: 3 } });

      // Without a terminal a fleet rollback needs --yes, and touches nothing without it.
      const refused = await runCli(['rollback', '--targets', fleet.file, '--dir', dir, '--all', '--json']);
      expect(refused.code).toBe(2);
      expect(JSON.parse(refused.stdout).error.code).toBe('confirmation-required');
      expect(statusRows[fleet.names[0] as string]).toMatchObject({ applied: 4 });
      expect((await ledgerRows(fleet.urls[fleet.names[0] as string] as string)).length).toBe(4);

      await query(
        fleet.urls[violated] as string,
        'UPDATE projects SET organization_id = account_id WHERE id = 7; ALTER TABLE projects ADD CONSTRAINT projects_organization_fk FOREIGN KEY (organization_id) REFERENCES organizations (id)',
      );
      const back = await runCli(['rollback', '--targets', fleet.file, '--dir', dir, '--all', '--yes', '--parallel', '4', '--json']);
      noPassword(back);
      expect(back.code, back.stderr).toBe(0);
      const backRows = rowsOf(back);
      for (const name of fleet.names) {
        expect(backRows[name], name).toMatchObject({ status: 'pending', applied: 0, pending: 4, error: null });
        expect(await catalogFingerprint(fleet.urls[name] as string), name).toBe(legacyShape);
      }
      // The target that had rolled back 0004 by itself reverts the three others.
      expect(backRows[rolled]?.ran).toEqual(['0003_projects_organization', '0002_projects_organization', '0001_organizations']);
    } finally {
      await fleet.drop();
    }
  });
});

describe('stopping a fleet', () => {
  const gatePlan = (sql: string) => ({
    ...plan,
    'migrations/0002_projects_organization.sql': `ALTER TABLE projects ADD COLUMN organization_id int;\n${sql}\n`,
  });

  it('SIGINT stops every running target at a safe point, starts no other, exits 130; the next run finishes them all', async () => {
    const fleet = await fleetOf(8);
    const gates = await Promise.all(fleet.names.map((n) => holdGate(fleet.urls[n] as string)));
    try {
      const dir = writePlan(gatePlan(gates[0]?.sql ?? ''));
      const run = startCli(['apply', '--targets', fleet.file, '--dir', dir, '--no-snapshot', '--parallel', '4', '--json']);
      // The first four targets wait inside unit 0002's transaction.
      await Promise.all(gates.slice(0, 4).map((g) => g.reached(run.done)));
      run.child.kill('SIGINT');
      const stopped = await run.done;
      noPassword(stopped);
      expect(stopped.code, stopped.stderr).toBe(130);
      const rows = rowsOf(stopped);
      for (const name of fleet.names.slice(0, 4)) {
        // 0001 may have travelled with 0002 in one message to the server: then both were rolled back.
        const row = rows[name] as Row;
        expect(row, name).toMatchObject({
          status: 'interrupted',
          pending: 4 - (row.applied ?? -1),
          error: { code: 'interrupted', exitCode: 130 },
        });
        expect(row.unit).toBe(row.applied === 1 ? '0002_projects_organization' : '0001_organizations');
        // 0002's transaction was rolled back: no column.
        expect(
          (
            await query(
              fleet.urls[name] as string,
              "SELECT 1 FROM information_schema.columns WHERE table_name = 'projects' AND column_name = 'organization_id'",
            )
          ).length,
          name,
        ).toBe(0);
      }
      for (const name of fleet.names.slice(4)) {
        expect(rows[name], name).toMatchObject({ status: 'skipped', held: 'interrupted' });
        expect(await ledgerRows(fleet.urls[name] as string), name).toEqual([]);
      }
      await Promise.all(gates.map((g) => g.open()));
      const again = await runCli(['apply', '--targets', fleet.file, '--dir', dir, '--no-snapshot', '--parallel', '4', '--json']);
      expect(again.code, again.stderr).toBe(0);
      for (const name of fleet.names) expect(await contentFingerprint(fleet.urls[name] as string), name).toEqual(upgraded);
    } finally {
      await Promise.all(gates.map((g) => g.open().catch(() => {})));
      await fleet.drop();
    }
  });

  it('--on-error stop lets a running target end its unit, then stops it; no other starts', async () => {
    const fleet = await fleetOf(8);
    const [broken, running] = [fleet.names[0] as string, fleet.names[2] as string];
    // t3 waits at a gate inside unit 0002 while t1 (no gate held there) fails at 0004.
    const gate = await holdGate(fleet.urls[running] as string);
    try {
      await query(fleet.urls[broken] as string, breakData);
      const dir = writePlan(gatePlan(gate.sql));
      // Two targets at once; the second line (a bare URL) is left out so that t1 and t3 run together.
      writeFileSync(
        fleet.file,
        fleet.names
          .filter((_, i) => i !== 1)
          .map((n) => `${n} ${fleet.urls[n]}`)
          .join('\n'),
      );
      const run = startCli(['apply', '--targets', fleet.file, '--dir', dir, '--no-snapshot', '--parallel', '2', '--json']);
      await gate.reached(run.done);
      // The fleet says t1 failed (and has asked t3 to stop) before the gate opens.
      await new Promise<void>((resolve) =>
        run.child.stderr?.on('data', (d: Buffer) => d.toString().includes(`${broken}: failed`) && resolve()),
      );
      await gate.open();
      const result = await run.done;
      noPassword(result);
      expect(result.code, result.stderr).toBe(1);
      const rows = rowsOf(result);
      expect(rows[broken]).toMatchObject({ status: 'failed', error: { code: 'unit-failed' } });
      // Its unit 0002 committed, and nothing after it ran.
      expect(rows[running]).toMatchObject({ status: 'stopped', applied: 2, pending: 2, unit: '0003_projects_organization', error: null });
      for (const name of fleet.names.slice(3)) expect(rows[name], name).toMatchObject({ status: 'skipped', held: 'stopped-on-error' });
    } finally {
      await gate.open().catch(() => {});
      await fleet.drop();
    }
  });

  it('kill -9 of the fleet mid-run, then a re-run, leaves every target exact', async () => {
    const fleet = await fleetOf(8);
    try {
      // A slower backfill (20 ms a batch), so that the kill lands inside one.
      const dir = writePlan({
        ...plan,
        'backfills/0003_projects_organization.sql': plan['backfills/0003_projects_organization.sql'].replace(
          'id <= $2;',
          'id <= $2 AND (SELECT pg_sleep(0.02)) IS NOT NULL;',
        ),
      });
      const args = ['apply', '--targets', fleet.file, '--dir', dir, '--no-snapshot', '--parallel', '4'];
      const run = startCli(args);
      const ours = "application_name LIKE 'tenantify apply%' AND datname = ANY('{" + fleet.databases.join(',') + "}')";
      await until(serverUrl(), `SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${ours} AND query LIKE 'UPDATE projects%'`);
      run.child.kill('SIGKILL');
      await run.done;
      // The dead run's sessions end (and their locks with them) once the server notices: within a second.
      await until(serverUrl(), `SELECT (count(*) = 0)::int AS n FROM pg_stat_activity WHERE ${ours}`);
      const midway = await Promise.all(fleet.names.map(async (n) => (await ledgerRows(fleet.urls[n] as string)).length));
      expect(midway.some((n) => n < 4)).toBe(true);
      const again = await runCli([...args, '--json']);
      noPassword(again);
      expect(again.code, again.stderr).toBe(0);
      for (const name of fleet.names) {
        expect(rowsOf(again)[name], name).toMatchObject({ status: 'up-to-date', applied: 4, pending: 0 });
        // Every project updated exactly once, whatever the kill interrupted.
        expect(await contentFingerprint(fleet.urls[name] as string), name).toEqual(upgraded);
      }
    } finally {
      await fleet.drop();
    }
  });
});

describe('targets files and options', () => {
  it('a bad line is exit 2 naming the file and line, and nothing is touched', async () => {
    const fleet = await fleetOf(1);
    try {
      writeFileSync(fleet.file, `t1 ${fleet.urls['t1']}\nt2 postgres://${role}:${password}@127.0.0.1:99999/x\n`);
      const result = await runCli(['apply', '--targets', fleet.file, '--dir', writePlan(plan), '--json']);
      noPassword(result);
      expect(result.code).toBe(2);
      const error = JSON.parse(result.stdout).error as { code: string; message: string };
      expect(error.code).toBe('targets-invalid');
      expect(error.message.startsWith(`${fleet.file}:2: `)).toBe(true);
      expect(await ledgerRows(fleet.urls['t1'] as string)).toEqual([]);
      const alone = await runCli(['apply', '-d', fleet.urls['t1'] as string, '--dir', writePlan(plan), '--canary', '1', '--json']);
      expect(alone.code).toBe(2);
      expect(JSON.parse(alone.stdout).error.code).toBe('fleet-option-alone');
      expect(await ledgerRows(fleet.urls['t1'] as string)).toEqual([]);
    } finally {
      await fleet.drop();
    }
  });

  it('--targets-query reads name, url rows from -d', async () => {
    const fleet = await fleetOf(2);
    const registry = await freshDatabase('fleetreg');
    try {
      await query(registry.url, 'CREATE TABLE fleet (name text, url text)');
      for (const name of fleet.names) await query(registry.url, 'INSERT INTO fleet VALUES ($1, $2)', [name, fleet.urls[name]]);
      const result = await runCli([
        'status',
        '-d',
        withPassword(registry.url),
        '--targets-query',
        'SELECT name, url FROM fleet ORDER BY name',
        '--dir',
        writePlan(plan),
        '--json',
      ]);
      noPassword(result);
      expect(result.code, result.stderr).toBe(0);
      expect(Object.values(rowsOf(result)).map((r) => [r.name, r.status, r.pending])).toEqual(
        fleet.names.map((n) => [n, 'pending', 4]).sort(),
      );
    } finally {
      await registry.drop();
      await fleet.drop();
    }
  });
});

describe('the programmatic API', () => {
  it('applyFleet and statusFleet return a row per target, and one target failing is its row, not a throw', async () => {
    const fleet = await fleetOf(2);
    try {
      const dir = writePlan(plan);
      const targets = [
        ...parseTargets(await readFile(fleet.file, 'utf8'), fleet.file),
        { name: 'lost', url: `postgres://${role}:${password}@127.0.0.1:1/lost`, source: 'test' },
      ];
      const ended: string[] = [];
      const applied = await applyFleet({
        dir,
        targets,
        parallel: 2,
        onError: 'continue',
        noSnapshot: true,
        observer: { ended: (r) => ended.push(r.name) },
      });
      expect(applied.exitCode).toBe(2);
      expect(applied.targets.map((t) => [t.name, t.status, t.applied, t.pending, t.error?.code ?? null])).toEqual([
        [fleet.names[0], 'up-to-date', 4, 0, null],
        [fleet.names[1], 'up-to-date', 4, 0, null],
        ['lost', 'unreachable', null, null, 'connection-failed'],
      ]);
      expect(ended.sort()).toEqual([...fleet.names, 'lost'].sort());
      expect(JSON.stringify(applied)).not.toContain(password);
      // Another run holds one target's lock: that target is `locked` (exit 4), the other goes on.
      const holder = new pg.Client({ connectionString: fleet.urls[fleet.names[0] as string] });
      await holder.connect();
      try {
        await holder.query('SELECT pg_advisory_lock($1, $2)', [0x7e4a, lockKey('tenantify')]);
        const locked = await applyFleet({ dir, targets: targets.slice(0, 2), parallel: 2, onError: 'continue', noSnapshot: true });
        expect(locked.exitCode).toBe(4);
        expect(locked.targets.map((t) => [t.status, t.error?.code ?? null])).toEqual([
          ['locked', 'lock-held'],
          ['up-to-date', null],
        ]);
      } finally {
        await holder.end();
      }
      const status = await statusFleet({ dir, targets: targets.slice(0, 2) });
      expect(status).toMatchObject({ exitCode: 0, held: undefined });
      expect(status.targets.map((t) => t.unit)).toEqual(['0004_projects_organization_fk', '0004_projects_organization_fk']);
    } finally {
      await fleet.drop();
    }
  });
});
