/**
 * A fixed-seed fuzz of plan inputs: byte flips, truncation, invalid UTF-8, BOM, CRLF,
 * empty and big files, unknown directives, out-of-range values, duplicate prefixes,
 * orphan rollbacks, odd names and hostile configs. In-process through the plan loader
 * (every case), and a sample through the built CLI's `plan` and `apply` against a real
 * database. The property: a contract exit code only, no stack trace, and nothing touched
 * when the exit is 2.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isTenantifyError, PlanErrors } from '../src/errors.js';
import { loadConfig } from '../src/plan/config.js';
import { loadPlan } from '../src/plan/load.js';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';

process.env['TENANTIFY_CACHE_DIR'] = 'none';

const seed = 0x7e4a_2026;
const caseCount = 320;
// The loader sees every case; the CLI sample proves the process turns each outcome into a contract exit code
// without a stack and touches nothing on exit 2, which a few cases of different classes show.
const cliSample = 6;

/** mulberry32: small, fast, and the same cases on every run. */
function random(seedValue: number): () => number {
  let a = seedValue >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Files = Map<string, Buffer>;

const base: Record<string, string> = {
  'tenantify.config.json': '{\n  "retries": 1,\n  "lockTimeout": "2s"\n}\n',
  'migrations/0001_fz_accounts.sql': `-- tenantify:statement-timeout 10s
CREATE TABLE fz_accounts (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO fz_accounts SELECT g, 'account ' || g FROM generate_series(1, 20) g;
-- tenantify:verify every account has a name
SELECT id FROM fz_accounts WHERE name = '';
`,
  'migrations/0002_fz_plan.sql': `-- tenantify:precheck accounts exist
SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM fz_accounts);
ALTER TABLE fz_accounts ADD COLUMN plan text;
`,
  'backfills/0003_fz_fill.sql': `-- tenantify:batch fz_accounts key=id size=5
UPDATE fz_accounts SET plan = 'free' WHERE id > $1 AND id <= $2;
`,
  'migrations/0004_fz_index.sql': `-- tenantify:transaction off
CREATE INDEX CONCURRENTLY fz_accounts_plan ON fz_accounts (plan);
`,
  'rollbacks/0002_fz_plan.sql': 'ALTER TABLE fz_accounts DROP COLUMN plan;\n',
  'rollbacks/0004_fz_index.sql': '-- tenantify:transaction off\nDROP INDEX CONCURRENTLY fz_accounts_plan;\n',
};

const directiveNames = [
  'transaction',
  'snapshot',
  'lock-timeout',
  'statement-timeout',
  'retries',
  'batch',
  'precheck',
  'verify',
  'transacton',
  'Retries',
  'lock_timeout',
  '',
  'x'.repeat(300),
];
const hostileValues = [
  '',
  'none',
  'off',
  'on',
  'full',
  'schema,full',
  'a,,b',
  '"quoted ""table"""',
  '99999999999999999999',
  '2147483648',
  '2147483647',
  '-1',
  '0',
  '0x10',
  '1e2',
  '1.5',
  'NaN',
  'Infinity',
  '500ms',
  '99999999999999h',
  '1000h',
  '3 min',
  'ms',
  'fz_accounts key=id size=0',
  'fz_accounts key=id size=99999999999999999999',
  'fz_accounts key=id key=id',
  'fz_accounts',
  '\u0000',
  '🐘',
  'é'.repeat(100),
  "'; DROP TABLE fz_accounts; --",
];
const hostileConfigs = [
  '',
  '{',
  'null',
  '[]',
  '"text"',
  '42',
  '{}',
  '{"retries": 1e400}',
  '{"retries": -1}',
  '{"retries": 3.5}',
  '{"retries": "3"}',
  '{"lockTimeout": "99999999999999999999h"}',
  '{"lockTimeout": 5}',
  '{"lockTimeout": "none"}',
  '{"statementTimeout": "2147483648"}',
  '{"batch": {"pause": "1000h"}}',
  '{"batch": {"size": 99999999999999999999}}',
  '{"batch": []}',
  '{"batch": {"parallel": 0}}',
  '{"ledgerSchema": "pg_catalog"}',
  '{"ledgerSchema": "public"}',
  '{"ledgerSchema": "information_schema"}',
  `{"ledgerSchema": "${'l'.repeat(70)}"}`,
  '{"ledgerSchema": "Tenantify"}',
  '{"ledgerSchema": "a\\u0000b"}',
  '{"__proto__": {"retries": 99}}',
  '{"constructor": {"prototype": {}}}',
  '{"guards": [{"name": "", "sql": ""}]}',
  '{"guards": {"name": "x"}}',
  '{"snapshotDir": ""}',
  '{"snapshotParallelAboveMb": -5}',
  '{"tenancy": 1}',
  `{"tenancy": ${'['.repeat(3000)}${']'.repeat(3000)}}`,
  `${'['.repeat(20000)}${']'.repeat(20000)}`,
  `{"unknown": true, ${'"k": 1, '.repeat(500)}"retries": 2}`,
  '\uFEFF{"retries": 2}',
  '{"retries": 2}\r\n',
  '{"retries": 2} trailing',
];
const oddNames = [
  '0005_x.Sql',
  '0005_x.SQL',
  '0005_x.sql ',
  ' 0005_x.sql',
  '0005_x.sql.bak',
  '0005 x.sql',
  '0005_.sql',
  '0005_é.sql',
  '0005_x y.sql',
  'x_0005.sql',
  '0005.sql',
  '0005a_x.sql',
  '0005A_x.sql',
  '0005ab_x.sql',
  '00000000000000000000000000005_x.sql',
  '0005_x.ts.sql',
  '0005_x..sql',
  '0005_-x.sql',
  '.0005_x.sql',
  `0005_${'n'.repeat(200)}.sql`,
  '0005_x.TS',
  '0001_fz_accounts.sql',
  '0002_again.sql',
];
const folders = ['migrations', 'backfills', 'rollbacks'];

function pick<T>(rand: () => number, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)] as T;
}

function sqlFile(files: Files, rand: () => number): string | undefined {
  const names = [...files.keys()].filter((n) => n.endsWith('.sql'));
  return names.length === 0 ? undefined : pick(rand, names);
}

function insertLine(bytes: Buffer, rand: () => number, line: string): Buffer {
  const lines = bytes.toString('utf8').split('\n');
  lines.splice(Math.floor(rand() * (lines.length + 1)), 0, line);
  return Buffer.from(lines.join('\n'));
}

const mutations: Record<string, (files: Files, rand: () => number) => void> = {
  byteFlip(files, rand) {
    const name = pick(rand, [...files.keys()]);
    const bytes = Buffer.from(files.get(name) as Buffer);
    for (let n = 1 + Math.floor(rand() * 5); n > 0 && bytes.length > 0; n--)
      bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
    files.set(name, bytes);
  },
  truncate(files, rand) {
    const name = pick(rand, [...files.keys()]);
    const bytes = files.get(name) as Buffer;
    files.set(name, bytes.subarray(0, Math.floor(rand() * bytes.length)));
  },
  invalidUtf8(files, rand) {
    const name = pick(rand, [...files.keys()]);
    const bytes = files.get(name) as Buffer;
    const at = Math.floor(rand() * bytes.length);
    const junk = pick(rand, [[0xff], [0xc3], [0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x00]]);
    files.set(name, Buffer.concat([bytes.subarray(0, at), Buffer.from(junk), bytes.subarray(at)]));
  },
  bom(files, rand) {
    const name = pick(rand, [...files.keys()]);
    files.set(name, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), files.get(name) as Buffer]));
  },
  crlf(files, rand) {
    const name = pick(rand, [...files.keys()]);
    files.set(name, Buffer.from((files.get(name) as Buffer).toString('latin1').replace(/\n/g, rand() < 0.8 ? '\r\n' : '\r'), 'latin1'));
  },
  empty(files, rand) {
    files.set(pick(rand, [...files.keys()]), Buffer.alloc(0));
  },
  unknownDirective(files, rand) {
    const name = sqlFile(files, rand);
    if (name)
      files.set(
        name,
        insertLine(files.get(name) as Buffer, rand, `-- tenantify:${pick(rand, directiveNames)} ${pick(rand, hostileValues)}`),
      );
  },
  outOfRange(files, rand) {
    const name = sqlFile(files, rand);
    const directive = pick(rand, ['lock-timeout', 'statement-timeout', 'retries', 'batch', 'snapshot']);
    if (name)
      files.set(name, Buffer.concat([Buffer.from(`-- tenantify:${directive} ${pick(rand, hostileValues)}\n`), files.get(name) as Buffer]));
  },
  duplicatePrefix(files, rand) {
    const prefix = pick(rand, ['0001', '0002', '0003', '1', '00002', '0002a']);
    files.set(`${pick(rand, ['migrations', 'backfills'])}/${prefix}_dup${Math.floor(rand() * 100)}.sql`, Buffer.from('SELECT 1;\n'));
  },
  orphanRollback(files, rand) {
    files.set(
      `rollbacks/${pick(rand, ['0099_nothing', '0003_fz_fill_typo', '0002_fz_plan.sql', '0005a_x'])}.sql`,
      Buffer.from('SELECT 1;\n'),
    );
  },
  oddName(files, rand) {
    const name = sqlFile(files, rand);
    const bytes = name ? (files.get(name) as Buffer) : Buffer.from('SELECT 1;\n');
    if (name && rand() < 0.5) files.delete(name);
    files.set(`${pick(rand, folders)}/${pick(rand, oddNames)}`, bytes);
  },
  hostileConfig(files, rand) {
    files.set('tenantify.config.json', Buffer.from(pick(rand, hostileConfigs)));
  },
  sections(files, rand) {
    const name = sqlFile(files, rand);
    if (name)
      files.set(
        name,
        insertLine(files.get(name) as Buffer, rand, `-- tenantify:${pick(rand, ['verify', 'precheck'])}${rand() < 0.8 ? ' a check' : ''}`),
      );
  },
  statements(files, rand) {
    const name = sqlFile(files, rand);
    const statement = pick(rand, [
      'BEGIN;',
      'COMMIT;',
      'DISCARD ALL;',
      'SELECT pg_advisory_unlock_all();',
      'VACUUM fz_accounts;',
      'SELECT $1;',
      ';;;',
      'CREATE FUNCTION f() RETURNS int AS $$ SELECT 1',
      '/* unterminated',
      "SELECT 'unterminated",
    ]);
    if (name) files.set(name, insertLine(files.get(name) as Buffer, rand, statement));
  },
};
const classes = Object.keys(mutations);

/** Big files: a few, a few megabytes at most, kept for the in-process run. */
function bigFile(kind: number): Buffer {
  if (kind === 0)
    return Buffer.from(
      `CREATE TABLE fz_big (id int);\n${'-- padding, a comment line of no consequence to anyone at all\n'.repeat(70_000)}`,
    );
  if (kind === 1)
    return Buffer.from(
      `INSERT INTO fz_accounts (id, name) VALUES\n${Array.from({ length: 60_000 }, (_, i) => `(${1000 + i}, 'n${i}')`).join(',\n')};\n`,
    );
  return Buffer.from(
    Array.from({ length: 6000 }, (_, i) => `INSERT INTO fz_accounts (id, name) VALUES (${1000 + i}, 'é${i}');`).join('\n'),
  );
}

interface Case {
  index: number;
  applied: string[];
  files: Files;
}

function makeCase(index: number): Case {
  const rand = random(seed + index * 7919);
  const files: Files = new Map(Object.entries(base).map(([name, text]) => [name, Buffer.from(text)]));
  const applied: string[] = [];
  if (index % 100 === 99) {
    const kind = Math.floor(index / 100) % 3;
    files.set(`migrations/0005_fz_big${kind}.sql`, bigFile(kind));
    applied.push(`big${kind}`);
  }
  for (let n = 1 + Math.floor(rand() * 3); n > 0; n--) {
    const name = classes[index % classes.length === 0 && n === 1 ? 0 : Math.floor(rand() * classes.length)] as string;
    (mutations[name] as (f: Files, r: () => number) => void)(files, rand);
    applied.push(name);
  }
  return { index, applied, files };
}

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function writeCase(c: Case): string {
  const dir = mkdtempSync(join(tmpdir(), 'tenantify-fuzz-'));
  dirs.push(dir);
  for (const [name, bytes] of c.files) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), bytes);
  }
  return dir;
}

const cases = Array.from({ length: caseCount }, (_, i) => makeCase(i));
const stackLine = /\n\s+at .+:\d+/;

describe(`plan input fuzz (seed ${seed}, ${caseCount} cases)`, () => {
  it('the loader ends every case with a plan or a plan error (exit 2), never anything else', async () => {
    const outcomes = new Map<string, number>();
    for (const c of cases) {
      const dir = writeCase(c);
      const where = `case ${c.index} (${c.applied.join(', ')})`;
      try {
        await loadPlan(dir, await loadConfig(dir));
        outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1);
      } catch (error) {
        if (!isTenantifyError(error)) throw new Error(`${where}: not a classified error: ${String((error as Error).stack ?? error)}`);
        expect(error.exitCode, where).toBe(2);
        const messages = error instanceof PlanErrors ? error.errors.map((e) => e.message) : [error.message];
        for (const message of messages) {
          expect(message, where).not.toMatch(stackLine);
          expect(message, where).not.toMatch(/undefined|\[object Object\]/);
        }
        outcomes.set('exit 2', (outcomes.get('exit 2') ?? 0) + 1);
      }
    }
    // Both outcomes are exercised: the fuzz is not all refusals or all passes.
    expect(outcomes.get('ok') ?? 0).toBeGreaterThan(10);
    expect(outcomes.get('exit 2') ?? 0).toBeGreaterThan(100);
  }, 60_000);

  describe('through the built CLI', () => {
    const dropped = dropAfterAll();
    const state = async (url: string) => {
      const [shape] = await query(
        url,
        `SELECT (SELECT md5(coalesce(string_agg(c.relname || ':' || c.relkind::text, ',' ORDER BY c.relname), '')) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')) AS relations,
                                           (SELECT md5(coalesce(string_agg(d::text, ',' ORDER BY id), '')) FROM fz_data d) AS data,
                                           to_regclass('tenantify.events') IS NOT NULL AS ledger`,
      );
      const ledger = shape?.['ledger']
        ? await query(
            url,
            'SELECT (SELECT count(*) FROM tenantify.runs)::int AS runs, (SELECT count(*) FROM tenantify.events)::int AS events',
          )
        : [];
      return { ...shape, ledger };
    };
    const sample = cases
      .filter((c) => !c.applied.some((a) => a.startsWith('big')))
      .filter((_, i) => i % Math.floor(caseCount / cliSample) === 0)
      .slice(0, cliSample);

    it.each(sample.map((c) => [c.index, c.applied.join(', '), c] as const))(
      'case %i (%s): a contract exit code, no stack, nothing touched on exit 2',
      async (_, __, c) => {
        const { url } = dropped(await freshDatabase('fuzz'));
        await query(url, "CREATE TABLE fz_data (id int PRIMARY KEY, note text); INSERT INTO fz_data VALUES (1, 'the application''s data')");
        const dir = writeCase(c);
        for (const command of ['plan', 'apply']) {
          const before = await state(url);
          const result = await runCli([command, '-d', url, '--dir', dir]);
          const where = `${command}: ${result.stderr}`;
          expect([0, 1, 2, 3, 5], where).toContain(result.code);
          expect(result.stderr, where).not.toMatch(stackLine);
          expect(result.stderr, where).not.toMatch(/this is a bug/);
          if (result.code === 2 || command === 'plan') expect(await state(url), where).toEqual(before);
        }
      },
      30_000,
    );
  });
});
