import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { connect } from '../src/db/connection.js';
import { Ledger } from '../src/db/ledger.js';
import { lockKey, storedIdentifier, takeRunLock } from '../src/db/lock.js';
import { runCli, startCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, holdGate, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

const long = 'ledger_of_the_hosts_to_organizations_upgrade_for_the_eu_region_';
const first = `${long}a`; // 64 bytes: PostgreSQL keeps the first 63
const second = `${long}b`;
const accented = 'é'.repeat(40); // 80 bytes of UTF-8

describe("the run lock's key", () => {
  const dropLater = dropAfterAll();

  it('comes from the schema name as PostgreSQL stores it', async () => {
    const db = dropLater(await freshDatabase('lockkey'));
    const [row] = await query<{ a: string; b: string; c: string }>(
      db.url,
      'SELECT $1::name::text AS a, $2::name::text AS b, $3::name::text AS c',
      [first, second, accented],
    );
    expect(storedIdentifier(first)).toBe(row?.a);
    expect(storedIdentifier(second)).toBe(row?.b);
    expect(storedIdentifier(accented)).toBe(row?.c);
    expect(storedIdentifier('tenantify')).toBe('tenantify');
    expect(lockKey(first)).toBe(lockKey(second));
    expect(lockKey(first)).not.toBe(lockKey('tenantify'));
  });

  it("waits for a killed run's session to end (its client process is gone), not for a live run's", async () => {
    const db = dropLater(await freshDatabase('lockorphan'));
    // A session named as a run of this machine whose process is gone, holding the lock a moment as a kill -9'd run's does.
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    const holder = async (pid: number): Promise<pg.Client> => {
      const client = new pg.Client({ connectionString: db.url, application_name: `tenantify apply (${hostname()} pid ${pid})` });
      await client.connect();
      await client.query('SELECT pg_advisory_lock(32330, $1)', [lockKey('tenantify')]);
      return client;
    };
    const orphan = await holder(gone);
    const ended = new Promise((resolve) => setTimeout(resolve, 3000)).then(() => orphan.end());
    const dir = writePlan({ 'migrations/0001_t.sql': 'CREATE TABLE t (id int);\n' });
    const resumed = await runCli(['apply', '-d', db.url, '--dir', dir, '--no-snapshot', '--json']);
    await ended;
    expect(resumed.code, resumed.stderr).toBe(0);
    // A live process's run is another run: refused at once, nothing applied.
    const live = await holder(process.pid);
    try {
      const refused = await runCli([
        'apply',
        '-d',
        db.url,
        '--dir',
        writePlan({ 'migrations/0001_u.sql': 'CREATE TABLE u (id int);\n' }),
        '--json',
      ]);
      expect(refused.code).toBe(4);
      expect(JSON.parse(refused.stdout).error.code).toBe('lock-held');
      expect(await query(db.url, "SELECT 1 FROM pg_class WHERE relname = 'u'")).toEqual([]);
    } finally {
      await live.end();
    }
  });

  it('is one lock for two configurations whose ledger names differ only after byte 63', async () => {
    const db = dropLater(await freshDatabase('lockkey'));
    const a = await connect(db.url, 'test a');
    const b = await connect(db.url, 'test b');
    try {
      const release = await takeRunLock(a, new Ledger(a.db, first));
      await expect(takeRunLock(b, new Ledger(b.db, second))).rejects.toMatchObject({
        exitCode: 4,
        message: expect.stringMatching(/another run holds the lock/),
      });
      await release();
      const again = await takeRunLock(b, new Ledger(b.db, second));
      await again();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('is one per database, whatever the ledger schema: a second apply with another ledgerSchema is refused (exit 4, lock-held), its ledger not created', async () => {
    const db = dropLater(await freshDatabase('lockdb'));
    const gate = await holdGate(db.url, 7171);
    const plan = (schema: string): string =>
      writePlan({
        'tenantify.config.json': JSON.stringify({ ledgerSchema: schema }),
        'migrations/0001_wait.sql': `CREATE TABLE ${schema}_t (id int);\n${gate.sql}\n`,
      });
    const first = startCli(['apply', '--dir', plan('ledger_a'), '-d', db.url, '--no-snapshot']);
    try {
      await gate.reached(first.done);
      const second = await runCli(['apply', '--dir', plan('ledger_b'), '-d', db.url, '--no-snapshot', '--json']);
      expect(second.code, second.stderr).toBe(4);
      expect(JSON.parse(second.stdout).error.code).toBe('lock-held');
      expect(await query(db.url, "SELECT to_regnamespace('ledger_b') AS ledger, to_regclass('ledger_b_t') AS t")).toEqual([
        { ledger: null, t: null },
      ]);
    } finally {
      await gate.open();
    }
    expect((await first.done).code).toBe(0);
  });
});
