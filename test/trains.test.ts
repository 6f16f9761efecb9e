/**
 * Quick units travel several to a message. Each still commits in its own transactions, and
 * everything a unit sent alone promises holds inside such a message: a failure there stops
 * the run at that unit with its line, a kill or a SIGINT there resumes like anywhere else.
 */
import { describe, expect, it } from 'vitest';
import { contentFingerprint, dropAfterAll, freshDatabase, holdGate, query, until } from './support/db.js';
import { runCli, startCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';
import { ledgerUnits } from './support/ledger.js';

const units = 20;
/** Unit 12 runs in the fourth message: units go 1, 2, 4, 8 to a message while they come back quickly. */
const special = 12;
const id = (i: number): string => `${String(i).padStart(4, '0')}_t${i}`;

/** Twenty quick units, each creating a table and checking it; `replace` swaps unit 12's file. */
function quickPlan(replace?: string): string {
  const files: Record<string, string> = {};
  for (let i = 1; i <= units; i++) {
    files[`migrations/${id(i)}.sql`] =
      i === special && replace !== undefined
        ? replace
        : `CREATE TABLE t${i} (id int);\n-- tenantify:verify the table starts empty\nSELECT id FROM t${i};\n`;
  }
  return writePlan(files);
}

async function ledger(url: string): Promise<string[]> {
  return (await ledgerUnits(url)).map((r) => `${r.id}:${r.status}`);
}

const appliedUpTo = (last: number): string[] => Array.from({ length: last }, (_, k) => `${id(k + 1)}:applied`);

async function tablesAfter(url: string, from: number): Promise<number> {
  const [row] = await query<{ n: number }>(
    url,
    `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public' AND tablename ~ '^t[0-9]+$' AND substr(tablename, 2)::int >= ${from}`,
  );
  return row?.n ?? -1;
}

async function eventsOf(url: string, unit: string): Promise<string[]> {
  const rows = await query<{ event: string }>(url, 'SELECT event FROM tenantify.events WHERE unit_id = $1 ORDER BY id', [unit]);
  return rows.map((r) => r.event);
}

describe('quick units, several to a message', () => {
  const dropped = dropAfterAll();
  async function db(): Promise<string> {
    const created = dropped(await freshDatabase('trains'));
    return created.url;
  }

  it('runs them in one message, each unit committed on its own while the message runs', async () => {
    const url = await db();
    const gate = await holdGate(url);
    const dir = quickPlan(`CREATE TABLE t${special} (id int);\n${gate.sql}\n`);
    const run = startCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    await gate.reached(run.done);
    const [activity] = await query<{ query: string }>(
      url,
      "SELECT query FROM pg_stat_activity WHERE application_name LIKE 'tenantify apply%' AND datname = current_database() AND state = 'active'",
    );
    const label = /^\/\* tenantify: (\S+) to (\S+), (\d+) units \*\//.exec(activity?.query ?? '');
    expect(label, activity?.query.slice(0, 80)).not.toBeNull();
    const [, first = '', last = '', count = ''] = label ?? [];
    expect(first <= id(special) && id(special) <= last && Number(count) > 1).toBe(true);
    // The units before it in the same message are committed and visible already.
    expect(await ledger(url)).toEqual([...appliedUpTo(special - 1), `${id(special)}:running`]);
    await gate.open();
    const result = await run.done;
    expect(result.code, result.stderr).toBe(0);
    expect(await ledger(url)).toEqual(appliedUpTo(units));
    const perUnit = await query<{ unit_id: string; events: string; duration_ms: number | null; verify_results: unknown }>(
      url,
      `SELECT e.unit_id, string_agg(e.event, ',' ORDER BY e.id) AS events, u.duration_ms, u.verify_results
         FROM tenantify.events e JOIN tenantify.units u ON u.id = e.unit_id GROUP BY e.unit_id, u.duration_ms, u.verify_results ORDER BY e.unit_id`,
    );
    expect(perUnit).toHaveLength(units);
    for (const row of perUnit) {
      expect(row.events, row.unit_id).toBe('started,snapshot_skipped,applied');
      expect(row.duration_ms, row.unit_id).not.toBeNull();
      if (row.unit_id !== id(special))
        expect(row.verify_results, row.unit_id).toEqual([{ name: 'the table starts empty', ok: true, violations: 0 }]);
    }
  });

  it('stops at a unit that fails inside the message: those before stay applied, it is rolled back with its line, none after runs', async () => {
    const url = await db();
    const dir = quickPlan(
      `CREATE TABLE t${special} (id int);\nINSERT INTO t${special} VALUES (1);\nINSERT INTO t${special}\n  VALUES ('one');\n`,
    );
    const result = await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`unit ${id(special)} failed: invalid input syntax for type integer`);
    expect(result.stderr).toContain(`at migrations/${id(special)}.sql:4:`);
    expect(await ledger(url)).toEqual([...appliedUpTo(special - 1), `${id(special)}:failed`]);
    expect(await tablesAfter(url, special)).toBe(0);
    expect(await tablesAfter(url, 1)).toBe(special - 1);
    expect(await eventsOf(url, id(special))).toEqual(['started', 'snapshot_skipped', 'failed']);
    const fixed = await runCli(['apply', '-d', url, '--dir', quickPlan()]);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(await ledger(url)).toEqual(appliedUpTo(units));
  });

  it('stops at a unit whose COMMIT fails (a deferred constraint): the rest of the message does not run', async () => {
    const url = await db();
    const dir = quickPlan(
      `CREATE TABLE t${special} (id int PRIMARY KEY);\nCREATE TABLE child (parent int REFERENCES t${special} DEFERRABLE INITIALLY DEFERRED);\nINSERT INTO child VALUES (7);\n`,
    );
    const result = await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`unit ${id(special)} failed: insert or update on table "child" violates foreign key constraint`);
    expect(await ledger(url)).toEqual([...appliedUpTo(special - 1), `${id(special)}:failed`]);
    expect(await tablesAfter(url, special)).toBe(0);
    const [child] = await query<{ gone: boolean }>(url, "SELECT to_regclass('public.child') IS NULL AS gone");
    expect(child?.gone).toBe(true);
  });

  it('rolls back a unit whose verify fails inside the message (exit 3), and runs none after it', async () => {
    const url = await db();
    const dir = quickPlan(
      `CREATE TABLE t${special} (id int);\nINSERT INTO t${special} VALUES (5);\n-- tenantify:verify the table starts empty\nSELECT id FROM t${special};\n`,
    );
    const result = await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot']);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`unit ${id(special)}: verify failed`);
    expect(result.stderr).toContain('the table starts empty');
    expect(await ledger(url)).toEqual([...appliedUpTo(special - 1), `${id(special)}:failed`]);
    expect(await tablesAfter(url, special)).toBe(0);
  });

  it("a unit that drops the session's prepared statements (DEALLOCATE ALL) is applied, and the messages after it have them again", async () => {
    // The ledger's records in a message are EXECUTEs of statements the session prepared: the
    // unit's own record then fails, the unit runs again alone, and they are prepared again.
    // Unit 7, in a later message, checks that they are there (alone, it would find none).
    const files: Record<string, string> = {};
    for (let i = 1; i <= 8; i++) {
      const body = i === 4 ? `CREATE TABLE t${i} (id int);\nDEALLOCATE ALL;\n` : `CREATE TABLE t${i} (id int);\n`;
      const check =
        i === 7
          ? "-- tenantify:verify the ledger's statements are prepared\nSELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name LIKE 'tenantify\\_ledger\\_%');\n"
          : '';
      files[`migrations/${id(i)}.sql`] = body + check;
    }
    const url = await db();
    const result = await runCli(['apply', '-d', url, '--dir', writePlan(files), '--no-snapshot']);
    expect(result.code, result.stderr).toBe(0);
    expect(await ledger(url)).toEqual(appliedUpTo(8));
    expect(await tablesAfter(url, 1)).toBe(8);
    const perUnit = await query<{ events: string }>(
      url,
      "SELECT string_agg(event, ',' ORDER BY id) AS events FROM tenantify.events WHERE unit_id IS NOT NULL GROUP BY unit_id ORDER BY unit_id",
    );
    expect(perUnit.map((r) => r.events)).toEqual(Array.from({ length: 8 }, () => 'started,snapshot_skipped,applied'));
  });

  it('stops on SIGINT inside the message (exit 130): the unit in flight rolled back and recorded, and apply resumes', async () => {
    const url = await db();
    const gate = await holdGate(url);
    const dir = quickPlan(`CREATE TABLE t${special} (id int);\n${gate.sql}\n`);
    const run = startCli(['apply', '-d', url, '--dir', dir]);
    await gate.reached(run.done);
    run.child.kill('SIGINT');
    const result = await run.done;
    await gate.open();
    expect(result.code).toBe(130);
    expect(result.stderr).toContain(`interrupted by SIGINT at ${id(special)}`);
    expect(await ledger(url)).toEqual([...appliedUpTo(special - 1), `${id(special)}:failed`]);
    expect(await eventsOf(url, id(special))).toEqual(['started', 'interrupted']);
    expect(await tablesAfter(url, special)).toBe(0);
    const resumed = await runCli(['apply', '-d', url, '--dir', dir]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await ledger(url)).toEqual(appliedUpTo(units));
  });

  it('resumes after a kill -9 inside the message to the content of an uninterrupted run', async () => {
    const baselineUrl = await db();
    const gateSql = 'SELECT pg_advisory_xact_lock(4242);';
    const dir = quickPlan(`CREATE TABLE t${special} (id int);\n${gateSql}\n`);
    const baseline = await runCli(['apply', '-d', baselineUrl, '--dir', dir]);
    expect(baseline.code, baseline.stderr).toBe(0);

    const url = await db();
    const gate = await holdGate(url);
    const run = startCli(['apply', '-d', url, '--dir', dir]);
    await gate.reached(run.done);
    run.child.kill('SIGKILL');
    await run.done;
    await gate.open();
    // The killed run's server process goes on until it finds the client gone: up to the end of the message.
    await until(
      url,
      "SELECT (count(*) = 0)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'tenantify apply%' AND datname = current_database()",
    );
    const atKill = await ledger(url);
    expect(atKill.slice(0, special - 1)).toEqual(appliedUpTo(special - 1));
    expect(atKill.join(' '), 'applied units in order, then at most one running').toMatch(/^(\S+:applied ?)+(\S+:running)?$/);
    const resumed = await runCli(['apply', '-d', url, '--dir', dir]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await contentFingerprint(url)).toEqual(await contentFingerprint(baselineUrl));
    const applied = await query<{ n: number }>(
      url,
      "SELECT count(*)::int AS n FROM tenantify.events WHERE event = 'applied' GROUP BY unit_id",
    );
    expect(applied.map((r) => r.n)).toEqual(Array.from({ length: units }, () => 1));
  });
});
