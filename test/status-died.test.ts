import { describe, expect, it } from 'vitest';
import { runCli, startCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, holdGate, query, until } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

describe('status of a run that died', () => {
  const dropLater = dropAfterAll();

  it('--json names a running run as active, and a dead one as died, not active', async () => {
    const db = dropLater(await freshDatabase('died'));
    const gate = await holdGate(db.url, 5151);
    const dir = writePlan({
      'migrations/0001_a.sql': 'CREATE TABLE a (id int);\n',
      'migrations/0002_wait.sql': `${gate.sql}\n`,
    });
    const run = startCli(['apply', '--dir', dir, '-d', db.url, '--no-snapshot']);
    try {
      await gate.reached(run.done);
      const running = await runCli(['status', '--dir', dir, '-d', db.url, '--json']);
      expect(running.code).toBe(0);
      const live = JSON.parse(running.stdout);
      expect(live.activeRun).toMatchObject({ command: 'apply', finishedAt: null });
      expect(live.diedRun).toBeNull();

      const [{ pid } = { pid: 0 }] = await query<{ pid: number }>(
        db.url,
        'SELECT backend_pid AS pid FROM tenantify.runs ORDER BY id DESC LIMIT 1',
      );
      run.child.kill('SIGKILL');
      await run.done;
      // Its server session notices within a second (client_connection_check_interval).
      await until(db.url, `SELECT (NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = ${pid}))::int AS n`);

      const after = await runCli(['status', '--dir', dir, '-d', db.url, '--json']);
      expect(after.code).toBe(0);
      const dead = JSON.parse(after.stdout);
      expect(dead.activeRun).toBeNull();
      expect(dead.diedRun).toMatchObject({ command: 'apply', outcome: 'died' });
      expect(dead.lastRun).toMatchObject({ outcome: 'died', finishedAt: null });
      const text = await runCli(['status', '--dir', dir, '-d', db.url]);
      expect(text.stdout).toMatch(/died without finishing \(its session is gone\): `tenantify apply` records it and resumes/);
      // status reads only: the ledger still has the run unfinished, for apply to record.
      const [row] = await query<{ finished: boolean }>(
        db.url,
        'SELECT finished_at IS NOT NULL AS finished FROM tenantify.runs ORDER BY id DESC LIMIT 1',
      );
      expect(row?.finished).toBe(false);
    } finally {
      run.child.kill('SIGKILL');
      await gate.open();
    }
  });
});
