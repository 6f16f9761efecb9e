/**
 * Units of generated statements (150,000 INSERTs) are normal: nothing recurses or spreads
 * over a unit's statements, and the parser takes the text a piece at a time. The figures of
 * a 150,000-statement unit (peak RSS of plan and apply) come from bench/large-unit.ts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { PlanError } from '../../src/errors.js';
import { messageText } from '../../src/exec/transport.js';
import { loadSqlParser, splitStatements } from '../../src/plan/sql-split.js';

describe('a unit of many statements', () => {
  beforeAll(() => loadSqlParser());

  it('travels as one message of 200,000 statements (no spread into a call)', () => {
    const body = Array.from({ length: 200_000 }, (_, i) => `INSERT INTO t VALUES (${i})`);
    const text = messageText(['0002_rows'], [{ start: ['SELECT 1'], body, checks: [] }], false);
    expect(text.startsWith('/* tenantify: 0002_rows */ BEGIN\n;\nSELECT 1\n;\nCOMMIT\n;\nBEGIN\n;\nINSERT INTO t VALUES (0)\n;\n')).toBe(
      true,
    );
    expect(text.endsWith('INSERT INTO t VALUES (199999)\n;\nCOMMIT')).toBe(true);
  });

  it('is split a piece at a time, with every statement whole and on its line, whatever crosses a cut', () => {
    // Statements that hold `;` and a line break inside a string, a dollar-quoted body and a
    // comment, repeated past several pieces (a piece is about 256 kB).
    const tricky = [
      "INSERT INTO t (note) VALUES ('one;\ntwo');",
      'DO $body$ BEGIN PERFORM 1;\nPERFORM 2;\nEND $body$;',
      'SELECT /* a comment;\nover lines */ 1;',
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1;\nSELECT 2;\nEND;',
    ];
    const lines: string[] = [];
    const expected: { line: number; start: string }[] = [];
    for (let i = 0; lines.length < 25_000; i++) {
      const statement = tricky[i % tricky.length] as string;
      expected.push({ line: lines.length + 1, start: statement.slice(0, 12) });
      lines.push(...statement.split('\n'));
    }
    const text = `${lines.join('\n')}\n`;
    expect(text.length).toBeGreaterThan(2 * 256 * 1024);
    const split = splitStatements('migrations/0002_many.sql', text, 1, undefined);
    expect(split.map((s) => ({ line: s.line, start: s.sql.slice(0, 12) }))).toEqual(expected);
    expect(split[0]?.sql).toBe("INSERT INTO t (note) VALUES ('one;\ntwo')");
    expect(split[1]?.sql).toBe('DO $body$ BEGIN PERFORM 1;\nPERFORM 2;\nEND $body$');
  });

  it('reports a syntax error far into a large text at its own line', () => {
    const good = Array.from({ length: 30_000 }, (_, i) => `INSERT INTO t VALUES (${i}, 'row ${i}');`);
    const text = `${[...good, 'INSERT INTO t VALUES (1,, 2);', ...good].join('\n')}\n`;
    let error: unknown;
    try {
      splitStatements('migrations/0002_many.sql', text, 3, undefined);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PlanError);
    expect((error as PlanError).line).toBe(3 + good.length);
  });
});
