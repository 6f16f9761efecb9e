/** The SQL unit parser without a database: statements with their lines, directives, sections, and errors that name the file and line. */
import { beforeAll, describe, expect, it } from 'vitest';
import { PlanError } from '../../src/errors.js';
import { loadSqlParser, parseSqlUnit } from '../../src/plan/sql-unit.js';

const defaults = { lockTimeoutMs: undefined, statementTimeoutMs: undefined, retries: 0 };

function parseError(text: string): PlanError {
  try {
    parseSqlUnit('migrations/0001_x.sql', text, defaults);
  } catch (error) {
    if (error instanceof PlanError) return error;
    throw error;
  }
  throw new Error('parsed without an error');
}

describe('parseSqlUnit', () => {
  beforeAll(() => loadSqlParser());

  it('splits the body into statements with the line and column of their first token', () => {
    const text = "-- a comment\nCREATE TABLE a (id int);\n\n  CREATE INDEX a_id ON a (id); COMMENT ON TABLE a IS 'x;y';\n";
    const { statements, options } = parseSqlUnit('migrations/0001_x.sql', text, defaults);
    expect(statements.map(({ sql, line, column }) => ({ sql, line, column }))).toEqual([
      { sql: 'CREATE TABLE a (id int)', line: 2, column: 1 },
      { sql: 'CREATE INDEX a_id ON a (id)', line: 4, column: 3 },
      { sql: "COMMENT ON TABLE a IS 'x;y'", line: 4, column: 32 },
    ]);
    expect(statements[1]?.createsIndex).toEqual({ schema: undefined, name: 'a_id' });
    expect(options.transaction).toBe(true);
  });

  it('reads the header directives and the precheck and verify sections', () => {
    const text = [
      '-- tenantify:transaction off',
      '-- tenantify:lock-timeout 2s',
      'CREATE INDEX CONCURRENTLY b_id ON b (id);',
      '-- tenantify:precheck no duplicates',
      'SELECT id FROM b GROUP BY id HAVING count(*) > 1;',
      '-- tenantify:verify the index is valid',
      "SELECT 1 FROM pg_index WHERE indexrelid = 'b_id'::regclass AND NOT indisvalid;",
      '',
    ].join('\n');
    const unit = parseSqlUnit('migrations/0002_b.sql', text, defaults);
    expect(unit.options.transaction).toBe(false);
    expect(unit.options.lockTimeoutMs).toBe(2000);
    expect(unit.statements).toHaveLength(1);
    expect(unit.prechecks.map(({ name, line }) => ({ name, line }))).toEqual([{ name: 'no duplicates', line: 5 }]);
    expect(unit.verifies.map(({ name, line }) => ({ name, line }))).toEqual([{ name: 'the index is valid', line: 7 }]);
  });

  it('a batched unit has one statement with $1 and $2', () => {
    const text = '-- tenantify:batch hosts key=id size=500\nUPDATE hosts SET n = 1 WHERE id > $1 AND id <= $2;\n';
    expect(parseSqlUnit('backfills/0003_h.sql', text, defaults).options.batch).toEqual({ table: 'hosts', key: 'id', size: 500 });
    expect(parseError('-- tenantify:batch hosts key=id size=500\nUPDATE hosts SET n = 1 WHERE id > $1;\n').message).toMatch(
      /^migrations\/0001_x\.sql:2: a batched statement must use \$1/,
    );
  });

  it('refuses what does not belong in a unit, naming the file and line', () => {
    expect(parseError('CREATE TABLE a (id int);\nCOMMIT;\n').message).toBe(
      'migrations/0001_x.sql:2: BEGIN, COMMIT and ROLLBACK do not belong in a unit',
    );
    expect(parseError('CREATE TABLE a (id int);\nDISCARD ALL;\n').line).toBe(2);
    expect(parseError('CREATE TABLE a (id int);\nCREATE INDEX CONCURRENTLY a_id ON a (id);\n').message).toMatch(
      /^migrations\/0001_x\.sql:2: this statement cannot run inside a transaction block/,
    );
    expect(parseError('CREATE TABLE a (id int);\nVACUUM a;\n').message).toMatch(/:2: this statement cannot run inside a transaction block/);
    expect(parseError('CREATE TABLE a (id int);\nVACUUM (ANALYZE) a;\n').line).toBe(2);
    // ANALYZE alone runs in a transaction (it sees the transaction's own rows).
    expect(parseSqlUnit('migrations/0001_x.sql', 'CREATE TABLE a (id int);\nANALYZE a;\n', defaults).statements).toHaveLength(2);
    expect(parseError('SELECT 1;\n-- tenantify:verify\nSELECT 1;\n').message).toMatch(/:2: a verify section needs a name/);
    expect(parseError('CREATE TABLE a (id int);\n-- tenantify:verify two\nDELETE FROM a;\n').message).toMatch(
      /:3: the verify section "two" must be exactly one SELECT/,
    );
  });
  it('a precheck in ranges: its table and key under the marker, its query with $1 and $2', () => {
    const ranged = [
      'CREATE TABLE o (id int);',
      '-- tenantify:precheck every host has an owner',
      '-- tenantify:ranges public.hosts key=id size=20000',
      'SELECT h.id FROM hosts h WHERE h.id > $1 AND h.id <= $2 AND h.owner_id IS NULL;',
      '',
    ].join('\n');
    const unit = parseSqlUnit('migrations/0001_x.sql', ranged, defaults);
    expect(unit.prechecks.map(({ name, line, ranges }) => ({ name, line, ranges }))).toEqual([
      { name: 'every host has an owner', line: 4, ranges: { table: 'public.hosts', key: 'id', size: 20000 } },
    ]);
    // The ranges are part of what runs: another size is another fingerprint.
    const resized = parseSqlUnit('migrations/0001_x.sql', ranged.replace('size=20000', 'size=500'), defaults);
    expect(resized.fingerprint).not.toBe(unit.fingerprint);

    const refused = (text: string) => {
      const error = parseError(text);
      return { code: error.code, line: error.line };
    };
    const query = 'SELECT h.id FROM hosts h WHERE h.id > $1 AND h.id <= $2;';
    // In the header: a unit has no ranges.
    expect(refused(`-- tenantify:ranges hosts key=id\nCREATE TABLE o (id int);\n`)).toEqual({ code: 'section-invalid', line: 1 });
    // A verify runs in the unit's transaction, on one snapshot.
    expect(refused(`CREATE TABLE o (id int);\n-- tenantify:verify v\n-- tenantify:ranges hosts key=id\n${query}\n`)).toEqual({
      code: 'section-invalid',
      line: 3,
    });
    expect(refused(`CREATE TABLE o (id int);\n-- tenantify:precheck p\n-- tenantify:ranges hosts id\n${query}\n`)).toEqual({
      code: 'directive-invalid',
      line: 3,
    });
    expect(
      refused(
        `CREATE TABLE o (id int);\n-- tenantify:precheck p\n-- tenantify:ranges hosts key=id\n-- tenantify:ranges hosts key=id\n${query}\n`,
      ),
    ).toEqual({ code: 'directive-repeated', line: 4 });
    // Without the bounds, a range would check the whole table each time.
    expect(refused('CREATE TABLE o (id int);\n-- tenantify:precheck p\n-- tenantify:ranges hosts key=id\nSELECT id FROM hosts;\n')).toEqual(
      {
        code: 'section-invalid',
        line: 4,
      },
    );
    // Parameters with no ranges to fill them.
    expect(refused(`CREATE TABLE o (id int);\n-- tenantify:precheck p\n${query}\n`)).toEqual({ code: 'section-invalid', line: 3 });
    // The ranges line after its query belongs to no precheck.
    expect(refused(`CREATE TABLE o (id int);\n-- tenantify:precheck p\nSELECT 1;\n-- tenantify:ranges hosts key=id\n`).code).toBe(
      'section-invalid',
    );
  });
});
