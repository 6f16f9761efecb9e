import { describe, expect, it } from 'vitest';
import { isConnectionLost } from '../src/exec/failure-report.js';
import { runCli, startCli } from './support/cli.js';
import { contentFingerprint, dropAfterAll, freshDatabase, holdGate, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

/** The run's backend, terminated from another connection as `pg_ctl restart -m fast` would. */
async function terminateRun(url: string): Promise<void> {
  const [row] = await query<{ pid: number }>(
    url,
    'SELECT backend_pid AS pid FROM tenantify.runs WHERE finished_at IS NULL ORDER BY id DESC LIMIT 1',
  );
  expect(row?.pid).toBeGreaterThan(0);
  await query(url, 'SELECT pg_terminate_backend($1)', [row?.pid]);
}

describe('a lost connection is told by its class, not its wording', () => {
  it('the session gone, whatever the message; SQLSTATE class 08 and 57P01..03; a socket errno; never a cancel or a unit error', () => {
    const gone = { lost: new Error('read ECONNRESET') };
    const there = { lost: undefined };
    expect(isConnectionLost(new Error('an error worded like nothing seen before'), gone)).toBe(true);
    expect(isConnectionLost(new Error('an error worded like nothing seen before'), there)).toBe(false);
    for (const code of ['08006', '08003', '57P01', '57P02', '57P03', 'ECONNRESET', 'EPIPE'])
      expect(isConnectionLost(Object.assign(new Error('x'), { code }), there), code).toBe(true);
    for (const code of ['57014', '23505', '42P01', '55P03'])
      expect(isConnectionLost(Object.assign(new Error('x'), { code }), there), code).toBe(false);
  });
});

describe('the connection lost mid-unit', () => {
  const dropLater = dropAfterAll();

  // One unit in one transaction (sent as a message), one with a precheck (step by step), one outside a transaction.
  const cases = [
    { name: 'a unit sent as one message', header: '', partial: false },
    { name: 'a unit run step by step', header: '-- tenantify:precheck nothing yet\nSELECT 1 WHERE false;\n', partial: false },
    { name: 'a unit outside a transaction', header: '-- tenantify:transaction off\n', partial: true },
  ];

  for (const c of cases) {
    it(`${c.name}: a classified error naming the unit and the ledger's state, exit 1, no stack; apply resumes`, async () => {
      const db = dropLater(await freshDatabase('lost'));
      const gate = await holdGate(db.url, 6161);
      const files = {
        'migrations/0001_a.sql': 'CREATE TABLE a (id int);\nINSERT INTO a VALUES (1), (2);\n',
        'migrations/0002_wait.sql': `${c.header}INSERT INTO a VALUES (3);\n${gate.sql}\nINSERT INTO a VALUES (4);\n`,
        'migrations/0003_c.sql': 'CREATE TABLE c AS SELECT id * 10 AS id FROM a;\n',
      };
      const dir = writePlan(files);
      const run = startCli(['apply', '--dir', dir, '-d', db.url, '--no-snapshot', '--json']);
      let result;
      try {
        await gate.reached(run.done);
        await terminateRun(db.url);
        result = await run.done;
      } finally {
        run.child.kill('SIGKILL');
        await gate.open();
      }
      expect(result.code).toBe(1);
      // The classification, not the wording: the server's ("terminating connection due to
      // administrator command") or the driver's ("Client has encountered a connection error"), as it comes.
      expect(JSON.parse(result.stdout).error).toMatchObject({ code: 'connection-lost', exitCode: 1 });
      expect(result.stderr).toMatch(/lost the connection to PostgreSQL while applying 0002_wait: /);
      expect(result.stderr).toMatch(
        /0002_wait stays `running` there\. Once the server is back, `tenantify apply` records this run as died and resumes 0002_wait/,
      );
      expect(result.stderr).not.toMatch(/this is a bug|\n\s+at /);
      const [row] = await query<{ status: string }>(db.url, "SELECT status FROM tenantify.units WHERE id = '0002_wait'");
      expect(row?.status).toBe('running');
      // The unit's work in flight was rolled back by the server; outside a transaction the statement before it stays.
      const [{ n } = { n: -1 }] = await query<{ n: number }>(db.url, 'SELECT count(*)::int AS n FROM a');
      expect(n).toBe(c.partial ? 3 : 2);

      const resumed = await runCli(['apply', '--dir', dir, '-d', db.url, '--no-snapshot']);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stdout + resumed.stderr).toMatch(/died without finishing; resuming its work/);

      const clean = dropLater(await freshDatabase('lostref'));
      const reference = await runCli(['apply', '--dir', writePlan(files), '-d', clean.url, '--no-snapshot']);
      expect(reference.code, reference.stderr).toBe(0);
      expect(await contentFingerprint(db.url)).toEqual(await contentFingerprint(clean.url));
      const statuses = await query<{ id: string; status: string }>(db.url, 'SELECT id, status FROM tenantify.units ORDER BY id');
      expect(statuses.map((s) => s.status)).toEqual(['applied', 'applied', 'applied']);
    });
  }
});
