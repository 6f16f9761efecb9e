/**
 * What the plan loader makes of odd input, in-process (no database): every bad value is a
 * plan error (exit 2) naming the file and line; nothing is accepted silently.
 */
import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import { isTenantifyError, PlanErrors } from '../../src/errors.js';
import { loadConfig } from '../../src/plan/config.js';
import { loadPlan } from '../../src/plan/load.js';
import { formatError } from '../../src/ui/format-error.js';
import type { Unit } from '../../src/plan/types.js';
import { writePlan } from '../support/plan-dir.js';

process.env['TENANTIFY_CACHE_DIR'] = 'none';

const good = { 'migrations/0001_start.sql': 'CREATE TABLE start (id int);\n' };

async function load(files: Record<string, string>): Promise<Unit[]> {
  const dir = writePlan(files);
  return loadPlan(dir, await loadConfig(dir));
}

/** The plan error's exit code, message and hint (several errors: each message and hint). */
async function refusal(files: Record<string, string>): Promise<{ exitCode: number; message: string; hints: string[] }> {
  try {
    await load(files);
  } catch (error) {
    if (!isTenantifyError(error)) throw error;
    const hints = error instanceof PlanErrors ? error.errors.map((e) => e.hint ?? '') : [error.hint ?? ''];
    return { exitCode: error.exitCode, message: [error.message, ...error.details].join('\n'), hints };
  }
  throw new Error('the plan loaded');
}

describe('out-of-range values are plan errors with the file and line', () => {
  it.each([
    [
      'lock-timeout 99999999999999h',
      /migrations\/0002_x\.sql:2: bad value "99999999999999h" for tenantify:lock-timeout: expected a duration of at most 2147483647ms/,
    ],
    [
      'statement-timeout 2147483648',
      /migrations\/0002_x\.sql:2: bad value "2147483648" for tenantify:statement-timeout: expected a duration of at most 2147483647ms/,
    ],
    ['lock-timeout 2147484s', /:2: bad value "2147484s" for tenantify:lock-timeout/],
  ])('directive %s', async (directive, message) => {
    const refused = await refusal({ ...good, 'migrations/0002_x.sql': `-- why\n-- tenantify:${directive}\nCREATE TABLE x (id int);\n` });
    expect(refused.exitCode).toBe(2);
    expect(refused.message).toMatch(message);
  });

  it('the largest timeout PostgreSQL takes is accepted', async () => {
    const [, unit] = await load({
      ...good,
      'migrations/0002_x.sql': '-- tenantify:statement-timeout 2147483647\nCREATE TABLE x (id int);\n',
    });
    expect(unit?.options.statementTimeoutMs).toBe(2_147_483_647);
  });

  it('a batch size past a million rows', async () => {
    const refused = await refusal({
      ...good,
      'backfills/0002_x.sql':
        '\n-- tenantify:batch start key=id size=99999999999999999999\nUPDATE start SET id = id WHERE id > $1 AND id <= $2;\n',
    });
    expect(refused.exitCode).toBe(2);
    expect(refused.message).toMatch(
      /backfills\/0002_x\.sql:2: .*size must be a whole number from 1 to 1000000, not "99999999999999999999"/,
    );
  });

  it.each([
    ['"lockTimeout": "99999999999999999999h"', 3, /at most 2147483647ms.* at lockTimeout/],
    ['"statementTimeout": "2147483648"', 3, /at most 2147483647ms.* at statementTimeout/],
    ['"batch": {\n    "pause": "1000h"\n  }', 4, /a duration of at most 1h at batch\.pause/],
    ['"batch": {\n    "size": 99999999999999999999\n  }', 4, /at batch\.size/],
  ])('config %s', async (entry, line, message) => {
    const refused = await refusal({ ...good, 'tenantify.config.json': `{\n  "retries": 3,\n  ${entry}\n}\n` });
    expect(refused.exitCode).toBe(2);
    expect(refused.message).toMatch(new RegExp(`^tenantify\\.config\\.json:${line}: `));
    expect(refused.message).toMatch(message);
  });
});

describe('ledgerSchema', () => {
  it.each([
    ['pg_catalog', /not a system schema/],
    ['pg_toast', /not a system schema/],
    ['pg_temp_1', /not a system schema/],
    ['information_schema', /not a system schema/],
    ['public', /not public/],
    ['a'.repeat(64), /at most 63 characters/],
  ])("%s is refused with the key's line", async (name, message) => {
    const refused = await refusal({ ...good, 'tenantify.config.json': `{\n  "retries": 3,\n  "ledgerSchema": "${name}"\n}\n` });
    expect(refused.exitCode).toBe(2);
    expect(refused.message).toMatch(/^tenantify\.config\.json:3: /);
    expect(refused.message).toMatch(message);
  });

  it('a name of 63 characters is accepted', async () => {
    const dir = writePlan({ ...good, 'tenantify.config.json': `{ "ledgerSchema": "${'a'.repeat(63)}" }` });
    expect((await loadConfig(dir)).ledgerSchema).toBe('a'.repeat(63));
  });
});

describe('directives', () => {
  it.each(['schema,full', 'users, none', 'full,users'])('snapshot %s is refused with its line', async (value) => {
    const refused = await refusal({
      ...good,
      'migrations/0002_x.sql': `-- a comment\n-- tenantify:snapshot ${value}\nCREATE TABLE x (id int);\n`,
    });
    expect(refused.exitCode).toBe(2);
    expect(refused.message).toMatch(
      /^migrations\/0002_x\.sql:2: bad value ".*" for tenantify:snapshot: expected none, schema or full alone/,
    );
  });

  it("a list of tables keeps the directive's line", async () => {
    const [, unit] = await load({ ...good, 'migrations/0002_x.sql': '\n-- tenantify:snapshot start, other\nCREATE TABLE x (id int);\n' });
    expect(unit?.options.snapshot).toEqual({ kind: 'tables', tables: ['start', 'other'], line: 2 });
  });

  it.each([
    ['', /bad value "" for tenantify:retries: expected a whole number from 0 to 100 in decimal digits/],
    ['0x10', /bad value "0x10" for tenantify:retries/],
    ['1e2', /bad value "1e2" for tenantify:retries/],
    ['-1', /bad value "-1" for tenantify:retries/],
    ['2.5', /bad value "2.5" for tenantify:retries/],
    ['101', /bad value "101" for tenantify:retries: expected a whole number from 0 to 100/],
  ])('retries "%s" is refused', async (value, message) => {
    const refused = await refusal({ ...good, 'migrations/0002_x.sql': `-- tenantify:retries ${value}\nCREATE TABLE x (id int);\n` });
    expect(refused.exitCode).toBe(2);
    expect(refused.message).toMatch(/^migrations\/0002_x\.sql:1: /);
    expect(refused.message).toMatch(message);
  });

  it('retries in decimal digits are taken', async () => {
    const [, unit] = await load({ ...good, 'migrations/0002_x.sql': '-- tenantify:retries 07\nCREATE TABLE x (id int);\n' });
    expect(unit?.options.retries).toBe(7);
  });
});

describe('file names and encodings', () => {
  it.each(['0016_x.Sql', '0016_x.SQL', '0016_x.sql ', '0016_x.TS'])('"%s" is refused, not skipped', async (name) => {
    const refused = await refusal({ ...good, [`migrations/${name}`]: 'CREATE TABLE x (id int);\n' });
    expect(refused.exitCode).toBe(2);
    expect(refused.message).toContain(`migrations/${name}: is not read as a unit: its name must end in .sql or .ts exactly`);
  });

  it('other files in a unit folder are still left alone', async () => {
    const units = await load({ ...good, 'migrations/README.md': '# notes\n', 'migrations/0002_x.sql.orig': 'junk' });
    expect(units.map((u) => u.id)).toEqual(['0001_start']);
  });

  it.each([
    ['SQL', 'CREATE TABLE x (id int);\nSELECT 1;\n', 1],
    ['a comment', '-- makes x\nCREATE TABLE x (id int);\nSELECT 1;\n', 2],
    ['a directive', '-- tenantify:retries 2\nCREATE TABLE x (id int);\nSELECT 1;\n', 2],
  ])('a UTF-8 BOM is accepted before %s', async (_, text, line) => {
    const [, withBom] = await load({ ...good, 'migrations/0002_x.sql': `\uFEFF${text}` });
    const [, without] = await load({ ...good, 'migrations/0002_x.sql': text });
    expect(withBom?.statements).toEqual(without?.statements);
    expect([...(withBom?.statements ?? [])][0]).toMatchObject({ sql: 'CREATE TABLE x (id int)', line, column: 1 });
    expect(withBom?.options).toEqual(without?.options);
  });
});

describe('a letter after the number places a unit between two others', () => {
  it('0007a_ and 0007b_ run after 0007_ and before 0008_, migrations and backfills interleaved', async () => {
    const units = await load({
      'migrations/0008_d.sql': 'SELECT 1;\n',
      'backfills/0007b_c.sql': 'SELECT 1;\n',
      'migrations/0007a_b.sql': 'SELECT 1;\n',
      'migrations/0007_a.sql': 'SELECT 1;\n',
      'rollbacks/0007a_b.sql': 'SELECT 1;\n',
    });
    expect(units.map((u) => u.id)).toEqual(['0007_a', '0007a_b', '0007b_c', '0008_d']);
    expect(units[1]).toMatchObject({ prefix: 7n, letter: 'a', name: 'b', kind: 'migration' });
    expect(units[1]?.rollback?.file).toBe('rollbacks/0007a_b.sql');
    expect(units[2]).toMatchObject({ prefix: 7n, letter: 'b', name: 'c', kind: 'backfill' });
  });

  it('two units with one prefix and letter are still a plan error', async () => {
    const refused = await refusal({ ...good, 'migrations/0007a_x.sql': 'SELECT 1;\n', 'backfills/0007a_y.sql': 'SELECT 1;\n' });
    expect(refused.exitCode).toBe(2);
    expect(refused.message).toMatch(/has the same prefix 7a as (migrations|backfills)\/0007a_[xy]\.sql/);
  });

  it('an upper-case letter or two letters are not a unit name', async () => {
    const refused = await refusal({ ...good, 'migrations/0007B_x.sql': 'SELECT 1;\n', 'migrations/0007ab_y.sql': 'SELECT 1;\n' });
    expect(refused.message).toMatch(/migrations\/0007B_x\.sql: is not named NNNN_name\.sql/);
    expect(refused.message).toMatch(/migrations\/0007ab_y\.sql: is not named NNNN_name\.sql/);
  });
});

describe('several plan errors', () => {
  it('each keeps its own hint, as printed', async () => {
    const files = {
      ...good,
      'migrations/0002_x.sql': 'CREATE TABLE x (id int);\nCREATE INDEX CONCURRENTLY x_id ON x (id);\n',
      'migrations/0003_y.sql': 'BEGIN;\nCREATE TABLE y (id int);\nCOMMIT;\n',
      'migrations/0004_z.sql': 'CREATE TABLE z (id int);\n',
      'rollbacks/0009_orphan.sql': 'DROP TABLE q;\n',
    };
    let printed = '';
    try {
      await load(files);
    } catch (error) {
      if (!isTenantifyError(error)) throw error;
      printed = formatError(error, new Chalk({ level: 0 }));
    }
    expect(printed).toMatch(/^error: the plan has 3 errors/);
    const lines = printed.split('\n');
    const hintAfter = (pattern: RegExp): string | undefined => lines[lines.findIndex((l) => pattern.test(l)) + 1];
    expect(hintAfter(/0002_x\.sql:2: this statement cannot run inside a transaction block/)).toMatch(
      /hint: add `-- tenantify:transaction off`/,
    );
    expect(hintAfter(/0003_y\.sql:1: BEGIN, COMMIT and ROLLBACK/)).toMatch(/hint: tenantify runs each unit in its own transaction/);
    expect(hintAfter(/rollbacks\/0009_orphan\.sql: reverts no unit/)).toMatch(
      /hint: a rollback carries the file name of the unit it reverts/,
    );
    expect(lines.at(-1)).toMatch(/^hint: fix the files named above/);
  });

  it('one error alone is shown with its hint', async () => {
    const refused = await refusal({
      ...good,
      'migrations/0002_x.sql': 'CREATE TABLE x (id int);\nCREATE INDEX CONCURRENTLY x_id ON x (id);\n',
    });
    expect(refused.hints).toEqual([expect.stringMatching(/add `-- tenantify:transaction off`/)]);
  });
});

describe('sections: a marker takes the one statement after it; the rest is the body', () => {
  it('a precheck may come before the body', async () => {
    const [, unit] = await load({
      ...good,
      'migrations/0002_x.sql':
        '-- tenantify:retries 1\n\n-- tenantify:precheck start is empty\nSELECT id FROM start;\n\nCREATE TABLE x (id int);\nINSERT INTO x SELECT id FROM start;\n-- tenantify:verify x matches start\nSELECT id FROM start EXCEPT SELECT id FROM x;\n',
    });
    expect(unit?.prechecks).toEqual([{ section: 'precheck', name: 'start is empty', sql: 'SELECT id FROM start', line: 4 }]);
    expect(unit?.verifies).toEqual([
      { section: 'verify', name: 'x matches start', sql: 'SELECT id FROM start EXCEPT SELECT id FROM x', line: 9 },
    ]);
    expect(Array.from(unit?.statements ?? [], (s) => [s.sql, s.line])).toEqual([
      ['CREATE TABLE x (id int)', 6],
      ['INSERT INTO x SELECT id FROM start', 7],
    ]);
    expect(unit?.options.retries).toBe(1);
  });

  it("a statement after a section's SELECT is the body again", async () => {
    const [, unit] = await load({
      ...good,
      'migrations/0002_x.sql':
        '-- tenantify:verify one\nSELECT 1 WHERE false;\nSELECT 2;\n-- tenantify:verify two\nSELECT 3 WHERE false;\n',
    });
    expect(Array.from(unit?.statements ?? [], (s) => [s.sql, s.line])).toEqual([['SELECT 2', 3]]);
    expect(unit?.verifies.map((c) => [c.name, c.line])).toEqual([
      ['one', 2],
      ['two', 5],
    ]);
  });

  it('an empty body is its own plan error', async () => {
    const refused = await refusal({
      ...good,
      'migrations/0002_x.sql': '-- tenantify:precheck a\nSELECT 1 WHERE false;\n-- tenantify:verify b\nSELECT 1 WHERE false;\n',
    });
    expect(refused.exitCode).toBe(2);
    expect(refused.message).toMatch(
      /^migrations\/0002_x\.sql:1: the unit's body is empty: every statement is in a precheck or verify section/,
    );
  });

  it('two markers in a row: the first has no query', async () => {
    const refused = await refusal({
      ...good,
      'migrations/0002_x.sql': 'CREATE TABLE x (id int);\n-- tenantify:verify a\n-- tenantify:verify b\nSELECT 1 WHERE false;\n',
    });
    expect(refused.message).toMatch(/^migrations\/0002_x\.sql:2: the verify section "a" has no query/);
  });

  it('a marker at the end has no query', async () => {
    const refused = await refusal({ ...good, 'migrations/0002_x.sql': 'CREATE TABLE x (id int);\n-- tenantify:precheck late\n' });
    expect(refused.message).toMatch(/^migrations\/0002_x\.sql:2: the precheck section "late" has no query/);
  });
});

describe('a long unit', () => {
  const inserts = (n: number): string[] =>
    Array.from({ length: n }, (_, i) => `INSERT INTO t (id, name) VALUES (${i}, 'é ${i} 🐘 ''x''');`);

  it("keeps every statement's line and column, multi-byte text included", async () => {
    const lines = ['CREATE TABLE t (id int, name text);', ...inserts(3000).map((s, i) => (i % 3 === 0 ? `/* ✓ ${i} */  ${s}` : s))];
    const [, unit] = await load({ ...good, 'migrations/0002_x.sql': `-- seed\n${lines.join('\n')}\n` });
    expect(unit?.statements).toHaveLength(3001);
    [...(unit?.statements ?? [])].forEach((s, i) => {
      expect(s.line).toBe(i + 2);
      expect(s.column).toBe(i > 0 && (i - 1) % 3 === 0 ? `/* ✓ ${i - 1} */  `.length + 1 : 1);
      expect(s.sql).toBe(i === 0 ? lines[0]?.slice(0, -1) : `INSERT INTO t (id, name) VALUES (${i - 1}, 'é ${i - 1} 🐘 ''x''')`);
    });
  });

  it('an error near the end is shown at its line', async () => {
    const lines = inserts(4000);
    lines[3990] = `INSERT INTO t (id, name) VALUES (3990, 'ü' 'broken');`;
    const refused = await refusal({ ...good, 'migrations/0002_x.sql': `-- seed 🐘\n\n${lines.join('\n')}\n` });
    expect(refused.message).toMatch(/^migrations\/0002_x\.sql:3993: does not parse: syntax error/);
  });

  it('a plan error about a statement near the end is shown at its line', async () => {
    const lines = inserts(4000);
    lines[3995] = 'COMMIT;';
    const refused = await refusal({ ...good, 'migrations/0002_x.sql': `-- ✓\n${lines.join('\n')}\n` });
    expect(refused.message).toMatch(/^migrations\/0002_x\.sql:3997: BEGIN, COMMIT and ROLLBACK do not belong in a unit/);
  });
});

describe('the effective lock timeout', () => {
  const timeouts = async (config: string | undefined, directive: string | undefined) => {
    const [unit] = await load({
      ...(config === undefined ? {} : { 'tenantify.config.json': config }),
      'migrations/0001_x.sql': `${directive ?? ''}CREATE TABLE x (id int);\n`,
    });
    return [unit?.options.lockTimeoutMs, unit?.options.retries];
  };

  it('is 500ms with 3 retries when nothing sets one', async () => {
    expect(await timeouts(undefined, undefined)).toEqual([500, 3]);
  });
  it("is the config's, or none", async () => {
    expect(await timeouts('{ "lockTimeout": "2s" }', undefined)).toEqual([2000, 3]);
    expect(await timeouts('{ "lockTimeout": "none" }', undefined)).toEqual([undefined, 3]);
  });
  it("is the directive's over the config's, or none", async () => {
    expect(await timeouts('{ "lockTimeout": "2s" }', '-- tenantify:lock-timeout 100ms\n')).toEqual([100, 3]);
    expect(await timeouts('{ "lockTimeout": "2s" }', '-- tenantify:lock-timeout none\n')).toEqual([undefined, 3]);
    expect(await timeouts(undefined, '-- tenantify:lock-timeout none\n')).toEqual([undefined, 3]);
  });
  it('a bad value says none is allowed', async () => {
    const refused = await refusal({ 'migrations/0001_x.sql': '-- tenantify:lock-timeout never\nSELECT 1;\n' });
    expect(refused.message).toMatch(
      /:1: bad value "never" for tenantify:lock-timeout: expected a duration like 500ms, 5s, 2min or 1h, or none/,
    );
  });
});
