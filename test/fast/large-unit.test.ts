/**
 * Units of generated statements (150,000 INSERTs) are normal: nothing recurses or spreads
 * over a unit's statements, the parser takes the text a piece at a time, and a unit file
 * over 1 MB is read a chunk at a time with its statements streamed (never all held). The
 * figures (peak RSS of plan and apply at 150,000 and 450,000 statements) come from
 * bench/large-unit.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlanError } from '../../src/errors.js';
import { messageText } from '../../src/exec/transport.js';
import { checksum } from '../../src/plan/load.js';
import { loadSqlParser, splitStatements, streamStatements } from '../../src/plan/sql-split.js';
import { parseSqlUnit, readSqlUnit, streamedUnitBytes } from '../../src/plan/sql-unit.js';
import { unitFileText } from '../../src/plan/unit-file.js';

/** `text` in chunks of the given sizes, taken in turn. */
function* chunked(text: string, sizes: number[]): Generator<string> {
  for (let at = 0, i = 0; at < text.length; i++) {
    const size = sizes[i % sizes.length] as number;
    yield text.slice(at, at + size);
    at += size;
  }
}

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

  it('streams the same statements, on the same lines, whatever the chunks cut through', () => {
    // A line cut in two, a `;` and its line break apart, a multi-byte character split from its
    // line, a string and a dollar-quoted body holding `;` and line breaks: every chunking gives the split of the whole.
    const tricky = [
      "INSERT INTO t (note) VALUES ('één;\ntwo');",
      'DO $body$ BEGIN PERFORM 1;\nPERFORM 2;\nEND $body$;',
      "SELECT 'ä😀' AS x;",
      '  INSERT INTO t VALUES (1)  ;   ',
    ];
    const lines: string[] = [];
    for (let i = 0; lines.length < 27_000; i++) lines.push(...(tricky[i % tricky.length] as string).split('\n'));
    const text = `${lines.join('\n')}\n`;
    expect(text.length).toBeGreaterThan(2 * 256 * 1024);
    const whole = splitStatements('migrations/0002_many.sql', text, 4, undefined);
    for (const sizes of [[1, 2, 3, 5, 7, 11, 13], [256 * 1024 + 1, 17], [1_000_000]]) {
      const streamed = [...streamStatements('migrations/0002_many.sql', chunked(text, sizes), 4)];
      expect(streamed.length, `chunks of ${sizes.join(', ')}`).toBe(whole.length);
      expect(streamed, `chunks of ${sizes.join(', ')}`).toEqual(whole);
    }
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

describe('a unit file over 1 MB', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tenantify-large-unit-'));
  beforeAll(() => loadSqlParser());
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is read a chunk at a time as load.ts reads it whole: CRLF across a chunk cut, a split character, a BOM', () => {
    // The reader's chunks are 256 kB: a CRLF and a 4-byte character straddle the first two cuts.
    const chunk = 256 * 1024;
    const head = `\uFEFF-- tenantify:lock-timeout 2s\r\n`;
    const filler = (bytes: number): string => `${'-- x\r\n'.repeat(Math.floor(bytes / 6))}${'y'.repeat(bytes % 6)}`;
    let text = head + filler(chunk - Buffer.byteLength(head) - 1);
    text += '\r\n';
    text += filler(2 * chunk - Buffer.byteLength(text) - 2);
    text += '😀\nSELECT 1;\r\n';
    const bytes = Buffer.from(text);
    expect(bytes.subarray(chunk - 1, chunk + 1).toString()).toBe('\r\n');
    const file = join(dir, 'cuts.sql');
    writeFileSync(file, bytes);
    let sum = '';
    const read = [...unitFileText(file, (s) => (sum = s))].join('');
    expect(read).toBe(text.replace(/^\uFEFF/, '').replace(/\r\n/g, '\n'));
    expect(sum).toBe(checksum(bytes));
  });

  it('has the statements, checks, fingerprint and checksum of the same text parsed in memory', () => {
    const body: string[] = [
      '-- tenantify:transaction off',
      '-- tenantify:snapshot none',
      'CREATE TABLE big (id int PRIMARY KEY, note text);',
    ];
    for (let i = 0; i < 12_000; i++) {
      if (i === 6_000) body.push('-- tenantify:verify no row is missing', 'SELECT id FROM big WHERE note IS NULL;');
      body.push(`INSERT INTO big (id, note) VALUES (${i}, 'row ${i};\r\nstill row ${i}, ${'and on '.repeat(6)}');`);
    }
    const text = `${body.join('\r\n')}\r\n`;
    const file = join(dir, 'unit.sql');
    writeFileSync(file, text);
    expect(Buffer.byteLength(text)).toBeGreaterThan(streamedUnitBytes);
    const defaults = { lockTimeoutMs: 500, statementTimeoutMs: undefined, retries: 0 };
    const streamed = readSqlUnit('migrations/0002_big.sql', file, defaults);
    const inMemory = parseSqlUnit('migrations/0002_big.sql', text.replace(/\r\n/g, '\n'), defaults);
    expect(streamed.checksum).toBe(checksum(Buffer.from(text)));
    expect(streamed.fingerprint).toBe(inMemory.fingerprint);
    expect(streamed.options).toEqual(inMemory.options);
    expect(streamed.verifies).toEqual(inMemory.verifies);
    expect(streamed.writes).toEqual(inMemory.writes);
    expect(streamed.statements.length).toBe(12_001);
    expect(Array.isArray(streamed.statements)).toBe(false);
    // Walked twice, read twice from the file: the same statements both times.
    expect([...streamed.statements]).toEqual(inMemory.statements);
    expect([...streamed.statements]).toEqual(inMemory.statements);
  });

  it('refuses to walk its statements once the file changed', () => {
    const file = join(dir, 'changed.sql');
    const text = Array.from({ length: 20_000 }, (_, i) => `INSERT INTO t VALUES (${i}, 'a row of some length');\n`).join('');
    writeFileSync(file, text);
    const unit = readSqlUnit('migrations/0003_changed.sql', file, { lockTimeoutMs: 500, statementTimeoutMs: undefined, retries: 0 });
    writeFileSync(file, text.replace("(19999, 'a row", "(19999, 'A row"));
    let error: unknown;
    try {
      for (const _ of unit.statements);
    } catch (e) {
      error = e;
    }
    expect((error as PlanError).code).toBe('unit-changed');
  });
});
