/**
 * Text without a database: the transport's messages (what a unit sends in one round trip),
 * the literals the ledger's records carry, and how failures read for apply and rollback.
 */
import { describe, expect, it } from 'vitest';
import { literal } from '../../src/db/ledger.js';
import { ChecksFailed, StatementFailure } from '../../src/exec/failure.js';
import { applyFailure, interruptedAt, revertFailure } from '../../src/exec/failure-report.js';
import { Interruption } from '../../src/exec/interrupt.js';
import { isCancel } from '../../src/exec/failure-report.js';
import { messageText, raiseOnRows, unitStatements } from '../../src/exec/transport.js';
import { ExitCode } from '../../src/errors.js';
import type { RollbackEntry } from '../../src/plan/planner.js';
import { row, statement, unit } from '../support/builders.js';

describe('the message of a unit', () => {
  const one = unit('0001_a', {
    options: { lockTimeoutMs: 2000 },
    statements: [statement('CREATE TABLE a (id int)'), statement('CREATE INDEX ON a (id) -- why', 2)],
    verifies: [{ section: 'verify', name: 'empty', sql: 'SELECT id FROM a', line: 4 }],
  });

  it('one unit: its start committed on its own, then its transaction with the timeouts, body, verify and record', () => {
    const u = unitStatements(one, ['START 1'], (checks) => `RECORD ${checks.map((c) => c.name).join(',')}`);
    expect(messageText(['0001_a'], [u], false)).toBe(
      [
        '/* tenantify: 0001_a */ BEGIN',
        'START 1',
        'COMMIT',
        'BEGIN',
        'SET LOCAL lock_timeout = 2000',
        'CREATE TABLE a (id int)',
        'CREATE INDEX ON a (id) -- why',
        "DO $tenantify$ BEGIN IF EXISTS (\nSELECT id FROM a\n) THEN RAISE EXCEPTION 'verify failed'; END IF; END $tenantify$",
        'RECORD empty',
        'COMMIT',
      ].join('\n;\n'),
    );
    expect(u.checks).toEqual([{ name: 'empty', section: 'verify', ok: true, violations: 0, sample: [] }]);
  });

  it("several units: each next unit's start commits with the unit before it", () => {
    const two = unit('0002_b');
    const text = messageText(
      ['0001_a', '0002_b'],
      [unitStatements(unit('0001_a'), ['START 1'], () => 'RECORD 1'), unitStatements(two, ['START 2'], () => 'RECORD 2')],
      false,
    );
    expect(text.split('\n;\n')).toEqual([
      '/* tenantify: 0001_a to 0002_b, 2 units */ BEGIN',
      'START 1',
      'COMMIT',
      'BEGIN',
      'CREATE TABLE t1 ()',
      'RECORD 1',
      'START 2',
      'COMMIT',
      'BEGIN',
      'CREATE TABLE t2 ()',
      'RECORD 2',
      'COMMIT',
    ]);
  });

  it('a dry run: savepoints, and nothing recorded', () => {
    const text = messageText(['0001_a'], [unitStatements(unit('0001_a'), [], undefined)], true);
    expect(text.split('\n;\n')).toEqual([
      '/* tenantify: 0001_a */ SAVEPOINT tenantify_unit',
      'CREATE TABLE t1 ()',
      'RELEASE SAVEPOINT tenantify_unit',
    ]);
  });

  it("a verify query that holds the block's dollar quote gets another one", () => {
    expect(raiseOnRows({ sql: "SELECT '$tenantify$'" })).toBe(
      "DO $tenantify0$ BEGIN IF EXISTS (\nSELECT '$tenantify$'\n) THEN RAISE EXCEPTION 'verify failed'; END IF; END $tenantify0$",
    );
  });
});

describe("the ledger's literals", () => {
  it('quotes strings (doubling quotes, E-strings for backslashes), numbers, booleans and null', () => {
    expect(literal("it's")).toBe("'it''s'");
    expect(literal('C:\\dir')).toBe(" E'C:\\\\dir'");
    expect(literal('{"a":"b\'c"}')).toBe(`'{"a":"b''c"}'`);
    expect(literal(42)).toBe('42');
    expect(literal(-1.5)).toBe('-1.5');
    expect(literal(true)).toBe('TRUE');
    expect(literal(null)).toBe('NULL');
    expect(literal(undefined)).toBe('NULL');
    expect(() => literal(Number.NaN)).toThrow(/cannot inline/);
    expect(() => literal({})).toThrow(/cannot inline/);
  });
});

describe('how a failure reads', () => {
  const sqlUnit = unit('0003_c', {
    statements: [statement('CREATE TABLE c (id int)', 3), statement('ALTER TABLE c ADD COLUMN x nope', 4)],
  });
  const failure = new StatementFailure(sqlUnit, [...sqlUnit.statements][1], {
    message: 'type "nope" does not exist',
    code: '42704',
    position: '29',
  });

  it('a statement of a unit in one transaction: where, with a caret, and what PostgreSQL said', () => {
    const error = applyFailure(sqlUnit, failure, undefined);
    expect(error.exitCode).toBe(ExitCode.unitFailed);
    expect(error.message).toBe('unit 0003_c failed: type "nope" does not exist');
    expect(error.details).toEqual([
      'at migrations/0003_c.sql:4:29',
      '4 | ALTER TABLE c ADD COLUMN x nope',
      '  |                             ^',
      'type "nope" does not exist (SQLSTATE 42704)',
    ]);
    expect(error.hint).toBe('it was rolled back whole; the ledger records the error. Fix the unit and run `tenantify apply` again');
  });

  it('outside a transaction, the statements before stay done and apply resumes', () => {
    const off = { ...sqlUnit, options: { ...sqlUnit.options, transaction: false } };
    expect(applyFailure(off, failure, undefined).hint).toMatch(
      /^it runs outside a transaction: the statements before this one stay done, and `tenantify apply` resumes at this one;/,
    );
  });

  it('a verify that returned rows: exit 3, with the rows', () => {
    const failed = new ChecksFailed('verify', [{ name: 'no orphans', section: 'verify', ok: false, violations: 7, sample: [{ id: 1 }] }]);
    const error = applyFailure(sqlUnit, failed, undefined);
    expect(error.exitCode).toBe(ExitCode.violations);
    expect(error.message).toBe('unit 0003_c: verify failed');
    expect(error.details).toEqual(['verify "no orphans": 7 rows', '    {"id":1}', '    ... and 6 more']);
    expect(error.hint).toMatch(/^the unit was rolled back; /);
  });

  it('an interruption: exit 130, and how to resume', () => {
    const error = applyFailure(sqlUnit, new Interruption('SIGINT'), 'SIGINT');
    expect(error.exitCode).toBe(ExitCode.interrupted);
    expect(error.message).toBe('interrupted by SIGINT at 0003_c: its transaction was rolled back');
    expect(interruptedAt('SIGTERM', '0004_d', true).message).toBe(
      'interrupted by SIGTERM at 0004_d: the work in flight was finished or rolled back and its progress recorded',
    );
    expect(isCancel(new Interruption('SIGINT'))).toBe(true);
    expect(isCancel({ code: '57014' })).toBe(true);
    expect(isCancel(failure)).toBe(false);
  });

  it('a rollback: the unit keeps its state', () => {
    const script = { ...sqlUnit, id: '0003_c', file: 'rollbacks/0003_c.sql' };
    const entry = {
      unit: { ...sqlUnit, rollback: script },
      ledger: row('0003_c'),
      partial: false,
      resume: { kind: 'start' },
      problem: undefined,
      driftReason: undefined,
    } as RollbackEntry;
    const error = revertFailure(
      entry,
      script,
      new StatementFailure(script, [...script.statements][0], { message: 'boom', code: 'XX000' }),
      undefined,
    );
    expect(error.message).toBe('rollback of 0003_c failed: boom');
    expect(error.hint).toBe(
      "the rollback's transaction was rolled back whole; 0003_c stays applied and the ledger records the error (event rollback_failed); older units were not reverted. Fix rollbacks/0003_c.sql or the data, then run `tenantify rollback` again",
    );
    expect(revertFailure(entry, script, new Interruption('SIGINT'), 'SIGINT').message).toBe(
      'interrupted by SIGINT while reverting 0003_c: its rollback was rolled back',
    );
  });
});
