import { symlinkSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockKey } from '../src/db/lock.js';
import { freshDatabase, query } from './support/db.js';
import { runCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';

const good = { 'migrations/0001_start.sql': 'CREATE TABLE start (id int);\n' };

interface Case {
  name: string;
  files: Record<string, string>;
  message: RegExp;
  setup?: (dir: string) => void;
}

const cases: Case[] = [
  {
    name: 'an unknown directive',
    files: { 'migrations/0002_x.sql': '-- tenantify:transacton off\nCREATE TABLE x (id int);\n' },
    message: /migrations\/0002_x\.sql:1: unknown directive "tenantify:transacton"/,
  },
  {
    name: 'a bad directive value',
    files: { 'migrations/0002_x.sql': '-- a comment\n-- tenantify:lock-timeout soon\nCREATE TABLE x (id int);\n' },
    message: /migrations\/0002_x\.sql:2: bad value "soon" for tenantify:lock-timeout: expected a duration/,
  },
  {
    name: 'a directive after the first statement',
    files: { 'migrations/0002_x.sql': 'CREATE TABLE x (id int);\n-- tenantify:retries 2\n' },
    message: /migrations\/0002_x\.sql:2: directive "tenantify:retries" must come before the first statement/,
  },
  {
    name: 'two units with one prefix',
    files: { 'migrations/0002_x.sql': 'CREATE TABLE x (id int);\n', 'backfills/0002_y.sql': 'SELECT 1;\n' },
    message:
      /migrations\/0002_x\.sql: has the same prefix 2 as backfills\/0002_y\.sql|backfills\/0002_y\.sql: has the same prefix 2 as migrations\/0002_x\.sql/,
  },
  {
    name: 'a rollback with no unit',
    files: { 'rollbacks/0007_orphan.sql': 'DROP TABLE x;\n' },
    message: /rollbacks\/0007_orphan\.sql: reverts no unit/,
  },
  {
    name: 'an unterminated dollar quote',
    files: { 'migrations/0002_fn.sql': 'CREATE TABLE x (id int);\n\nCREATE FUNCTION f() RETURNS int AS $$\n  SELECT 1;\n' },
    message: /migrations\/0002_fn\.sql:3: does not parse: unterminated dollar-quoted string/,
  },
  {
    name: 'a syntax error',
    files: { 'migrations/0002_x.sql': 'CREATE TABLE x (id int);\nALTER TABLE x ADD COLUMN;\n' },
    message: /migrations\/0002_x\.sql:2: does not parse: syntax error at or near ";"/,
  },
  {
    name: 'a verify section that is not one SELECT',
    files: { 'migrations/0002_x.sql': 'CREATE TABLE x (id int);\n-- tenantify:verify nothing\nDELETE FROM x;\n' },
    message: /migrations\/0002_x\.sql:3: the verify section "nothing" must be exactly one SELECT/,
  },
  {
    name: 'CREATE INDEX CONCURRENTLY in a transactional unit',
    files: { 'migrations/0002_x.sql': 'CREATE TABLE x (id int);\nCREATE INDEX CONCURRENTLY x_id ON x (id);\n' },
    message: /migrations\/0002_x\.sql:2: this statement cannot run inside a transaction block/,
  },
  {
    name: 'DISCARD ALL, which would release the run lock',
    files: { 'migrations/0002_x.sql': '-- tenantify:transaction off\nCREATE TABLE x (id int);\nDISCARD ALL;\n' },
    message: /migrations\/0002_x\.sql:3: DISCARD ALL and pg_advisory_unlock_all\(\) do not belong in a unit/,
  },
  {
    name: 'a call of pg_advisory_unlock_all()',
    files: { 'migrations/0002_x.sql': 'CREATE TABLE x (id int);\n\nSELECT count(*) FROM x WHERE PG_ADVISORY_UNLOCK_ALL() IS NULL;\n' },
    message: /migrations\/0002_x\.sql:3: DISCARD ALL and pg_advisory_unlock_all\(\) do not belong in a unit/,
  },
  {
    name: 'an unknown configuration key',
    files: { 'tenantify.config.json': '{\n  "ledgerSchema": "tenantify",\n  "lockTimout": "5s"\n}\n' },
    message: /tenantify\.config\.json:3: unknown key "lockTimout"/,
  },
  {
    name: 'configuration that is not JSON',
    files: { 'tenantify.config.json': '{\n  "retries": 3,\n}\n' },
    message: /tenantify\.config\.json(:\d+)?: is not valid JSON/,
  },
  {
    name: 'an unreadable file',
    files: {},
    setup: (dir) => symlinkSync('/nonexistent/0002_gone.sql', join(dir, 'migrations', '0002_gone.sql')),
    message: /migrations\/0002_gone\.sql: cannot be read: ENOENT/,
  },
];

describe('plan errors: exit 2, the file and line, nothing touched', () => {
  let url = '';
  let drop = async () => {};
  const ledgerState = async () =>
    query(
      url,
      `SELECT (SELECT count(*) FROM tenantify.runs)::int AS runs, (SELECT count(*) FROM tenantify.events)::int AS events,
                       (SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM tenantify.units) AS units,
                       (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')::int AS tables`,
    );

  beforeAll(async () => {
    const db = await freshDatabase('planerr');
    url = db.url;
    drop = db.drop;
    const first = await runCli(['apply', '-d', url, '--dir', writePlan(good)]);
    expect(first.code).toBe(0);
  });
  afterAll(() => drop());

  it.each(cases)('$name', async ({ files, message, setup }) => {
    const dir = writePlan({ ...good, ...files });
    setup?.(dir);
    const before = await ledgerState();
    for (const command of ['apply', 'plan']) {
      const result = await runCli([command, '-d', url, '--dir', dir]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/\n\s+at .*\.js:\d+/);
      expect(result.stdout).toBe('');
    }
    expect(await ledgerState()).toEqual(before);
  });

  it('--json puts the error in the one JSON document', async () => {
    const dir = writePlan({ ...good, 'migrations/0002_x.sql': '-- tenantify:batch\nSELECT 1;\n' });
    const result = await runCli(['apply', '-d', url, '--dir', dir, '--json']);
    expect(result.code).toBe(2);
    const doc = JSON.parse(result.stdout) as { error: { message: string; exitCode: number } };
    expect(doc.error.exitCode).toBe(2);
    expect(doc.error.message).toMatch(/^migrations\/0002_x\.sql:1: bad value "" for tenantify:batch/);
  });

  // apply connects and takes the lock while it reads the plan: a bad plan must still win.
  it('a bad plan is exit 2 even while another session holds the run lock, and nothing is touched', async () => {
    const dir = writePlan({ ...good, 'migrations/0002_x.sql': '-- tenantify:transacton off\nCREATE TABLE x (id int);\n' });
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      const held = await holder.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [0x7e4a, lockKey('tenantify')]);
      expect(held.rows[0]?.ok).toBe(true);
      const before = await ledgerState();
      const refused = await runCli(['apply', '-d', url, '--dir', dir]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/migrations\/0002_x\.sql:1: unknown directive "tenantify:transacton"/);
      expect(await ledgerState()).toEqual(before);
      // The same run with a good plan is refused by the lock.
      const locked = await runCli(['apply', '-d', url, '--dir', writePlan(good)]);
      expect(locked.code).toBe(4);
      expect(locked.stderr).toMatch(/another run holds the lock/);
      expect(await ledgerState()).toEqual(before);
    } finally {
      await holder.end();
    }
  });

  it('a bad plan is exit 2 at once while the server has not answered the connection yet', async () => {
    // A server that accepts connections and never answers: the connection opened beside the
    // plan's loading would wait forever (pg has no connect timeout by default).
    const sockets: Socket[] = [];
    const silent = createServer((socket) => {
      sockets.push(socket);
      socket.resume(); // read what it sends, so its end is seen
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      const dir = writePlan({ ...good, 'migrations/0002_x.sql': '-- tenantify:retries many\nSELECT 1;\n' });
      const result = await runCli(['apply', '-d', `postgres://dba:s3cret-pw@127.0.0.1:${port}/nowhere`, '--dir', dir]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/migrations\/0002_x\.sql:1: bad value "many" for tenantify:retries: expected a whole number/);
      expect(result.stderr).not.toContain('s3cret-pw');
      // Whatever reached the server was closed by the client, not left open.
      for (const socket of sockets) if (!socket.destroyed) await new Promise((resolve) => socket.once('close', resolve));
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  }, 30_000);

  it('a database that cannot be reached is exit 2, with the password redacted', async () => {
    const result = await runCli(['apply', '-d', 'postgres://dba:s3cret-pw@127.0.0.1:1/nowhere', '--dir', writePlan(good)]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('cannot connect to dba@127.0.0.1:1/nowhere');
    expect(result.stderr + result.stdout).not.toContain('s3cret-pw');
  });
});
