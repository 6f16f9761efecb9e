/**
 * SIGINT in every phase of a unit: whatever runs (precheck, pg_dump, body, verify, a batch on
 * any worker) is cancelled, the unit is rolled back and recorded as interrupted, and the exit
 * is 130 with nothing applied. A second SIGINT does the same without waiting for the run's
 * sessions, and leaves no unit `running` and no run unfinished (apply and rollback alike).
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findPgTool } from '../src/db/pg-tools.js';
import { startCli, type CliResult } from './support/cli.js';
import { dropAfterAll, freshDatabase, query, until } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

/** A session of the test's database sleeping in pg_sleep: the phase under test is in flight. */
const sleeping =
  "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database() AND pid <> pg_backend_pid()";

interface Stopped {
  result: CliResult;
  error: { code: string; exitCode: number };
  units: Record<string, string>;
  runs: { outcome: string | null }[];
}

/** Applies `dir` (or runs `command`), sends SIGINT (twice with `again`) once `ready` polls true, and reads what the ledger says. */
async function interruptApply(
  url: string,
  dir: string,
  ready: () => Promise<void>,
  options: { again?: boolean; env?: Record<string, string>; command?: string[] } = {},
): Promise<Stopped> {
  const run = startCli([...(options.command ?? ['apply']), '-d', url, '--dir', dir, '--json'], { env: options.env ?? {} });
  let result: CliResult;
  try {
    await Promise.race([
      ready(),
      run.done.then((r) => Promise.reject(new Error(`the run ended (exit ${r.code}) before the phase under test:\n${r.stderr}`))),
    ]);
    run.child.kill('SIGINT');
    if (options.again) {
      // The first one is underway (its note is printed), then the second.
      await new Promise((resolve) => setTimeout(resolve, 300));
      run.child.kill('SIGINT');
    }
    result = await run.done;
  } finally {
    run.child.kill('SIGKILL');
  }
  const units = Object.fromEntries(
    (await query<{ id: string; status: string }>(url, 'SELECT id, status FROM tenantify.units')).map((u) => [u.id, u.status]),
  );
  const runs = await query<{ outcome: string | null }>(url, 'SELECT outcome FROM tenantify.runs ORDER BY id');
  const error = (JSON.parse(result.stdout || '{}') as { error?: { code: string; exitCode: number } }).error ?? {
    code: 'none',
    exitCode: 0,
  };
  return { result, error, units, runs };
}

describe('SIGINT during a unit', () => {
  const dropLater = dropAfterAll();
  const db = async (setup = ''): Promise<string> => {
    const made = dropLater(await freshDatabase('sig'));
    if (setup) await query(made.url, setup);
    return made.url;
  };

  it('in a precheck: cancelled, the unit not applied, exit 130', async () => {
    const url = await db();
    const dir = writePlan({
      'migrations/0001_a.sql':
        '-- tenantify:precheck slow\nSELECT 1 FROM pg_sleep(30) AS s WHERE random() < 0;\nCREATE TABLE sig_t2 (id int);\n',
    });
    const stopped = await interruptApply(url, dir, () => until(url, sleeping));
    expect(stopped.result.code, stopped.result.stderr).toBe(130);
    expect(stopped.error.code).toBe('interrupted');
    expect(stopped.units).toEqual({ '0001_a': 'failed' });
    expect(await query(url, "SELECT to_regclass('sig_t2') AS t")).toEqual([{ t: null }]);
  });

  describe('while pg_dump takes the snapshot', () => {
    const bindir = mkdtempSync(join(tmpdir(), 'tenantify-slow-dump-'));
    afterAll(() => rmSync(bindir, { recursive: true, force: true }));

    it('pg_dump is stopped, no .dump is left, the body never runs, exit 130', async () => {
      const real = findPgTool('pg_dump');
      if (!real) throw new Error('pg_dump is needed for this test');
      const marker = join(bindir, 'dumping');
      // A pg_dump that takes its time: it says it started, then waits (its sleep detached from the pipes), then dumps.
      writeFileSync(
        join(bindir, 'pg_dump'),
        `#!/bin/sh\n[ "$1" = --version ] && exec ${real.path} --version\ntouch ${marker}\nsleep 30 </dev/null >/dev/null 2>&1 &\nwait $!\nexec ${real.path} "$@"\n`,
      );
      chmodSync(join(bindir, 'pg_dump'), 0o755);
      const url = await db('CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1);');
      const dir = writePlan({
        'tenantify.config.json': JSON.stringify({ snapshotDir: join(bindir, 'snapshots') }),
        'migrations/0001_touch.sql': 'UPDATE t SET v = 2;\n',
      });
      const ready = async (): Promise<void> => {
        while (!existsSync(marker)) await new Promise((resolve) => setTimeout(resolve, 50));
      };
      const stopped = await interruptApply(url, dir, ready, { env: { TENANTIFY_PG_BINDIR: bindir } });
      expect(stopped.result.code, stopped.result.stderr).toBe(130);
      expect(stopped.error.code).toBe('interrupted');
      expect(stopped.units).toEqual({ '0001_touch': 'failed' });
      expect(await query(url, 'SELECT v FROM t')).toEqual([{ v: 1 }]);
      const runDirs = existsSync(join(bindir, 'snapshots')) ? readdirSync(join(bindir, 'snapshots')) : [];
      expect(runDirs.flatMap((d) => readdirSync(join(bindir, 'snapshots', d)))).toEqual([]);
    });
  });

  it('in the verify of a unit outside a transaction: cancelled, not recorded applied, exit 130', async () => {
    const url = await db();
    const dir = writePlan({
      'migrations/0001_off.sql':
        '-- tenantify:transaction off\nCREATE TABLE off_t (id int);\n-- tenantify:verify slow\nSELECT 1 FROM pg_sleep(30) AS s WHERE random() < 0;\n',
    });
    const stopped = await interruptApply(url, dir, () => until(url, sleeping));
    expect(stopped.result.code, stopped.result.stderr).toBe(130);
    expect(stopped.error.code).toBe('interrupted');
    expect(stopped.units).toEqual({ '0001_off': 'failed' });
  });

  it("in a batch on a second worker: every worker's batch in flight is cancelled and rolled back, exit 130", async () => {
    const url = await db(
      'CREATE TABLE hosts (id bigint PRIMARY KEY, org int); INSERT INTO hosts (id) SELECT g FROM generate_series(1, 400) g;',
    );
    // Two workers over two halves; every batch sleeps long: both are in flight when the signal comes.
    const dir = writePlan({
      'tenantify.config.json': JSON.stringify({ batch: { targetDuration: '100s', parallel: 2 } }),
      'backfills/0001_fill.sql':
        '-- tenantify:batch hosts key=id size=500\nUPDATE hosts SET org = 1 WHERE id > $1 AND id <= $2 AND pg_sleep(0.2) IS NOT NULL;\n',
    });
    const bothSleeping = sleeping.replace('count(*)::int AS n', '(count(*) >= 2)::int AS n');
    const stopped = await interruptApply(url, dir, () => until(url, bothSleeping));
    expect(stopped.result.code, stopped.result.stderr).toBe(130);
    expect(stopped.error.code).toBe('interrupted');
    expect(stopped.units).toEqual({ '0001_fill': 'failed' });
    expect(await query(url, 'SELECT count(*)::int AS n FROM hosts WHERE org IS NOT NULL')).toEqual([{ n: 0 }]);
  });

  it('twice, in a body that ignores cancels: the sessions are ended, the unit recorded interrupted (not running), exit 130', async () => {
    const url = await db();
    // A body that swallows every cancel: only ending its session stops it.
    const stubborn =
      'DO $$ BEGIN FOR i IN 1..300 LOOP BEGIN PERFORM pg_sleep(0.1); EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$;\n';
    const dir = writePlan({ 'migrations/0001_stubborn.sql': `CREATE TABLE stubborn (id int);\n${stubborn}` });
    const stopped = await interruptApply(url, dir, () => until(url, sleeping), { again: true });
    expect(stopped.result.code, stopped.result.stderr).toBe(130);
    expect(stopped.units).toEqual({ '0001_stubborn': 'failed' });
    expect(stopped.runs.map((r) => r.outcome)).toEqual(['interrupted']);
    expect(await query(url, "SELECT to_regclass('stubborn') AS t")).toEqual([{ t: null }]);
    const events = await query<{ event: string }>(url, "SELECT event FROM tenantify.events WHERE unit_id = '0001_stubborn' ORDER BY id");
    expect(events.map((e) => e.event)).toEqual(['started', 'interrupted']);
  });

  it('twice, in a rollback that ignores cancels: the sessions are ended, the run recorded interrupted (not died), exit 130', async () => {
    const url = await db();
    const stubborn =
      'DO $$ BEGIN FOR i IN 1..300 LOOP BEGIN PERFORM pg_sleep(0.1); EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$;\n';
    const dir = writePlan({
      'migrations/0001_kept.sql': 'CREATE TABLE kept (id int);\n',
      'rollbacks/0001_kept.sql': `DROP TABLE kept;\n${stubborn}`,
    });
    const applied = await startCli(['apply', '-d', url, '--dir', dir]).done;
    expect(applied.code, applied.stderr).toBe(0);
    const stopped = await interruptApply(url, dir, () => until(url, sleeping), { again: true, command: ['rollback', '--all', '--yes'] });
    expect(stopped.result.code, stopped.result.stderr).toBe(130);
    expect(stopped.units).toEqual({ '0001_kept': 'applied' });
    expect(stopped.runs.map((r) => r.outcome)).toEqual(['done', 'interrupted']);
    expect(await query(url, "SELECT to_regclass('kept') AS t")).toEqual([{ t: 'kept' }]);
    // Finished, with its exit code: the next run has no run of its own to record as died.
    expect(await query(url, 'SELECT exit_code FROM tenantify.runs WHERE finished_at IS NOT NULL ORDER BY id')).toEqual([
      { exit_code: 0 },
      { exit_code: 130 },
    ]);
  });
});
