/**
 * A unit file over 1 MB is streamed (sql-unit.ts's readSqlUnit): its statements are read and
 * run as the file goes by. Kept small here (about 1,000 statements of 1 kB each); the peak memory at
 * 150,000 and 450,000 statements comes from bench/large-unit.ts. A `transaction off` one
 * killed at a statement boundary resumes after exactly the statements recorded (an INSERT run
 * twice would break the primary key); a transactional one applies statement by statement.
 */
import { describe, expect, it } from 'vitest';
import { streamedUnitBytes } from '../src/plan/sql-unit.js';
import { runCli, startCli } from './support/cli.js';
import { dropAfterAll, endSessions, freshDatabase, holdGate, query, until } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

const pad = 'x'.repeat(1000);
const inserts = (table: string, from: number, count: number): string =>
  Array.from({ length: count }, (_, i) => `INSERT INTO ${table} (id, pad) VALUES (${from + i}, '${pad}');\n`).join('');

describe('a streamed unit', () => {
  const dropLater = dropAfterAll();

  it('killed at a statement boundary resumes after exactly the statements recorded', async () => {
    const db = dropLater(await freshDatabase('stream'));
    const gate = await holdGate(db.url, 4343);
    // 540 INSERTs, the gate (its wait not cut short by a lock timeout), 540 more.
    const off = `-- tenantify:transaction off\n${inserts('off_rows', 0, 540)}SET lock_timeout = 0;\nSELECT pg_advisory_xact_lock(4343);\n${inserts('off_rows', 540, 540)}`;
    const transactional = inserts('tx_rows', 0, 1050);
    expect(Buffer.byteLength(off)).toBeGreaterThan(streamedUnitBytes);
    expect(Buffer.byteLength(transactional)).toBeGreaterThan(streamedUnitBytes);
    const dir = writePlan({
      'migrations/0001_tables.sql':
        'CREATE TABLE off_rows (id int PRIMARY KEY, pad text);\nCREATE TABLE tx_rows (id int PRIMARY KEY, pad text);\n',
      'migrations/0002_off.sql': off,
      'migrations/0003_tx.sql': transactional,
    });

    const first = startCli(['apply', '-d', db.url, '--dir', dir]);
    await gate.reached(first.done);
    first.child.kill('SIGKILL');
    await first.done;
    // The run's sessions end with it: its statement at the gate never completes.
    await query(
      db.url,
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    await endSessions(db.name); // query()'s own session: the wait below counts every other
    await until(
      db.url,
      "SELECT (count(*) = 0)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
    );
    await gate.open();
    const [killed] = await query<{ status: string; progress: Record<string, unknown> }>(
      db.url,
      "SELECT status, progress FROM tenantify.units WHERE id = '0002_off'",
    );
    expect(killed?.status).toBe('running');
    // A count and a digest of the statements done, not a list of their hashes.
    expect(killed?.progress['statements']).toBeUndefined();
    expect((killed?.progress['statementsDone'] as { count: number }).count).toBe(541);
    expect(await query(db.url, 'SELECT count(*)::int AS n FROM off_rows')).toEqual([{ n: 540 }]);
    // status shows how far it got.
    const planned = await runCli(['status', '-d', db.url, '--dir', dir]);
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.stdout).toContain('541 of 1082 statements done');

    const resumed = await runCli(['apply', '-d', db.url, '--dir', dir, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await query(db.url, 'SELECT count(*)::int AS n FROM off_rows')).toEqual([{ n: 1080 }]);
    expect(await query(db.url, 'SELECT count(*)::int AS n FROM tx_rows')).toEqual([{ n: 1050 }]);
    expect(await query(db.url, 'SELECT id, status FROM tenantify.units ORDER BY id')).toEqual([
      { id: '0001_tables', status: 'applied' },
      { id: '0002_off', status: 'applied' },
      { id: '0003_tx', status: 'applied' },
    ]);
    // Every statement recorded done once, across both runs: none skipped, none run twice.
    const done = await query<{ statement: number }>(
      db.url,
      "SELECT (detail->>'statement')::int AS statement FROM tenantify.events WHERE unit_id = '0002_off' AND event = 'statement_done' ORDER BY id",
    );
    expect(done.map((d) => d.statement)).toEqual(Array.from({ length: 1082 }, (_, i) => i + 1));
  });
});
