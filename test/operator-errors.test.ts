/**
 * What an operator gets wrong at 3 a.m., each told in one line with a hint, exit 2 and a
 * stable code, no stack, and nothing touched in the database.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findPgTool } from '../src/db/pg-tools.js';
import { runCli, type CliResult } from './support/cli.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

interface JsonError {
  code: string;
  message: string;
  exitCode: number;
  hint: string | null;
  details: string[];
}

function errorOf(result: CliResult): JsonError {
  expect(result.stderr, result.stderr).not.toMatch(/this is a bug|\n\s+at /);
  return (JSON.parse(result.stdout) as { error: JsonError }).error;
}

describe('an operator error', () => {
  const dropLater = dropAfterAll();
  const scratch = mkdtempSync(join(tmpdir(), 'tenantify-operator-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('a unit with a NUL byte: nul-byte at its line', async () => {
    const dir = writePlan({ 'migrations/0001_nul.sql': 'CREATE TABLE a (id int);\nSELECT 1\0;\n' });
    const result = await runCli(['plan', '--dir', dir, '--json']);
    expect(result.code).toBe(2);
    const error = errorOf(result);
    expect(error.code).toBe('nul-byte');
    expect(error.message).toMatch(/^migrations\/0001_nul\.sql:2: /);
    expect(error.hint).toBeTruthy();
  });

  it("a TypeScript unit that does not compile: esbuild's message, with the file, the line and a caret", async () => {
    const dir = writePlan({
      'migrations/0001_bad.ts': "import { defineUnit } from 'tenantify';\nexport default defineUnit({ up(: ) {} });\n",
    });
    const result = await runCli(['plan', '--dir', dir, '--json']);
    expect(result.code).toBe(2);
    const error = errorOf(result);
    expect(error.code).toBe('ts-compile-error');
    expect(error.message).toMatch(/^migrations\/0001_bad\.ts:2: does not compile: Expected identifier but found ":"$/);
    expect(error.details).toEqual(['2 | export default defineUnit({ up(: ) {} });', `  | ${' '.repeat(31)}^`]);
  });

  it('a snapshotDir that cannot be written: snapshot-dir-unwritable before anything is touched', async () => {
    const db = dropLater(await freshDatabase('opsnap'));
    await query(db.url, 'CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1)');
    const file = join(scratch, 'a-file');
    writeFileSync(file, '');
    const dir = writePlan({
      'tenantify.config.json': JSON.stringify({ snapshotDir: join(file, 'snapshots') }),
      'migrations/0001_touch.sql': 'UPDATE t SET v = 2;\n',
    });
    const result = await runCli(['apply', '--dir', dir, '-d', db.url, '--json']);
    expect(result.code).toBe(2);
    expect(errorOf(result).code).toBe('snapshot-dir-unwritable');
    expect(await query(db.url, "SELECT v, to_regnamespace('tenantify') AS ledger FROM t")).toEqual([{ v: 1, ledger: null }]);
  });

  it('a BOM in tenantify.config.json is accepted, as in units', async () => {
    const dir = writePlan({ 'tenantify.config.json': '\uFEFF{ "retries": 2 }\n', 'migrations/0001_a.sql': 'CREATE TABLE a (id int);\n' });
    const result = await runCli(['plan', '--dir', dir, '--json']);
    expect(result.code, result.stdout).toBe(0);
  });

  it('a config value of the wrong type: config-invalid at its line, with no unrelated list of keys', async () => {
    const dir = writePlan({
      'tenantify.config.json': '{\n  "retries": "three"\n}\n',
      'migrations/0001_a.sql': 'CREATE TABLE a (id int);\n',
    });
    const result = await runCli(['plan', '--dir', dir, '--json']);
    expect(result.code).toBe(2);
    const error = errorOf(result);
    expect(error.code).toBe('config-invalid');
    expect(error.message).toMatch(/^tenantify\.config\.json:2: .* at retries$/);
    expect(error.hint).not.toMatch(/allowed keys/);
    // An unknown key nested in an object lists that object's keys, not the top level's.
    const nested = await runCli([
      'plan',
      '--dir',
      writePlan({ 'tenantify.config.json': '{ "batch": { "sizee": 1 } }', 'migrations/0001_a.sql': 'SELECT 1;\n' }),
      '--json',
    ]);
    // The keys of the object the unknown one is in (batch's), not the top level's.
    expect(errorOf(nested).code).toBe('config-unknown-key');
    expect(errorOf(nested).hint).toMatch(/^allowed keys at batch: size, /);
    expect(errorOf(nested).hint).not.toMatch(/snapshotDir|ledgerSchema/);
  });

  it('sslmode=bogus: url-invalid, before connecting', async () => {
    const db = dropLater(await freshDatabase('opssl'));
    const dir = writePlan({ 'migrations/0001_a.sql': 'CREATE TABLE a (id int);\n' });
    const result = await runCli(['apply', '--dir', dir, '-d', `${db.url}?sslmode=bogus`, '--json']);
    expect(result.code).toBe(2);
    expect(errorOf(result).code).toBe('url-invalid');
    expect(await query(db.url, "SELECT to_regclass('a') AS a, to_regnamespace('tenantify') AS ledger")).toEqual([
      { a: null, ledger: null },
    ]);
  });

  it("sslmode=require: node-pg's ten-line security warning is one line of tenantify's", async () => {
    const db = dropLater(await freshDatabase('opssl'));
    const dir = writePlan({ 'migrations/0001_a.sql': 'CREATE TABLE a (id int);\n' });
    // The suite's server has no SSL: the connection fails, after the warning would have been printed.
    const result = await runCli(['status', '--dir', dir, '-d', `${db.url}?sslmode=require`, '--json']);
    expect(result.code).toBe(2);
    expect(errorOf(result).code).toBe('connection-failed');
    expect(result.stderr).not.toMatch(/SECURITY WARNING|uselibpqcompat/);
    expect(result.stderr.split('\n').filter((line) => /^note: .*sslmode/.test(line))).toHaveLength(1);
  });

  describe('a pg_dump that fails', () => {
    const bindir = mkdtempSync(join(tmpdir(), 'tenantify-failing-dump-'));
    afterAll(() => rmSync(bindir, { recursive: true, force: true }));

    it('leaves no 0-byte .dump behind, and the unit is not applied', async () => {
      const real = findPgTool('pg_dump');
      if (!real) throw new Error('pg_dump is needed for this test');
      writeFileSync(
        join(bindir, 'pg_dump'),
        `#!/bin/sh\n[ "$1" = --version ] && exec ${real.path} --version\necho "pg_dump: error: connection to server failed" >&2\nexit 1\n`,
      );
      chmodSync(join(bindir, 'pg_dump'), 0o755);
      const db = dropLater(await freshDatabase('opdump'));
      await query(db.url, 'CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1)');
      const snapshots = join(scratch, 'snapshots');
      const dir = writePlan({
        'tenantify.config.json': JSON.stringify({ snapshotDir: snapshots }),
        'migrations/0001_touch.sql': 'UPDATE t SET v = 2;\n',
      });
      const result = await runCli(['apply', '--dir', dir, '-d', db.url, '--json'], { env: { TENANTIFY_PG_BINDIR: bindir } });
      expect(result.code, result.stderr).toBe(1);
      expect(errorOf(result).code).toBe('unit-failed');
      expect(await query(db.url, 'SELECT v FROM t')).toEqual([{ v: 1 }]);
      const left = existsSync(snapshots) ? readdirSync(snapshots).flatMap((run) => readdirSync(join(snapshots, run))) : [];
      expect(left).toEqual([]);
    });
  });
});
