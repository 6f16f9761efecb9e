import { describe, expect, it } from 'vitest';
import { TenantifyError } from '../../src/errors.js';
import { parseDirectives } from '../../src/plan/directives.js';
import { analyzeTenancy } from '../../src/tenancy/graph.js';
import { cutToBytes, keptTableName, pgName } from '../../src/tenancy/scaffold/names.js';
import { parseQualifiedName, quoteQualified, someNames, splitTableName, tableName, writtenName } from '../../src/tenancy/sql-text.js';
import { ensureKeyTypes, keyTypeMismatches } from '../../src/tenancy/key-type.js';
import type { Catalog, CatalogTable, TenancyAnalysis } from '../../src/tenancy/types.js';
import { analyzeJson, mermaidGraph } from '../../src/ui/tenancy-view.js';
import { planRun } from '../../src/plan/planner.js';
import type { Statement } from '../../src/plan/types.js';
import { row, statement, unit } from '../support/builders.js';

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof TenantifyError ? error.code : `not a TenantifyError: ${String(error)}`;
  }
  return undefined;
}

describe('parseQualifiedName: names read like SQL identifiers', () => {
  it('never splits on a dot inside quotes', () => {
    expect(parseQualifiedName('"my.schema".t')).toEqual([
      { text: 'my.schema', quoted: true },
      { text: 't', quoted: false },
    ]);
    expect(parseQualifiedName('my."schema.t"')).toEqual([
      { text: 'my', quoted: false },
      { text: 'schema.t', quoted: true },
    ]);
  });

  it('takes doubled quotes, spaces, semicolons and any script', () => {
    expect(parseQualifiedName('public."Customer Accounts"')).toEqual([
      { text: 'public', quoted: false },
      { text: 'Customer Accounts', quoted: true },
    ]);
    expect(parseQualifiedName('"a""b;c"')).toEqual([{ text: 'a"b;c', quoted: true }]);
    expect(parseQualifiedName(' "🍕pizza🍕" . Заказы ')).toEqual([
      { text: '🍕pizza🍕', quoted: true },
      { text: 'Заказы', quoted: false },
    ]);
  });

  it('refuses what does not parse, with a code', () => {
    for (const bad of ['', '"open', 'a..b', 'a.', '"x"y', 'a"b', '""'])
      expect(
        codeOf(() => parseQualifiedName(bad)),
        bad,
      ).toBe('name-invalid');
  });
});

describe('TableName: schema.table, unambiguous when the schema holds a dot', () => {
  it('keeps a dotted schema apart from a dotted table', () => {
    const dotted = tableName('my.schema', 't');
    const decoy = tableName('my', 'schema.t');
    expect(dotted).not.toBe(decoy);
    expect(splitTableName(dotted)).toEqual({ schema: 'my.schema', table: 't' });
    expect(splitTableName(decoy)).toEqual({ schema: 'my', table: 'schema.t' });
    expect(quoteQualified(dotted)).toBe('"my.schema".t');
    expect(quoteQualified(decoy)).toBe('my."schema.t"');
    expect(splitTableName(tableName('"q', 'x'))).toEqual({ schema: '"q', table: 'x' });
  });

  it('is written back in a form that parses to the same parts', () => {
    for (const [schema, table] of [
      ['public', 'Customer Accounts'],
      ['my.schema', 't'],
      ['my', 'schema.t'],
      ['s', 'a"b'],
      ['public', 'order'],
    ] as const) {
      const written = writtenName(tableName(schema, table), false);
      expect(
        parseQualifiedName(written).map((p) => p.text),
        written,
      ).toEqual([schema, table]);
    }
    expect(writtenName('public.tasks')).toBe('tasks');
  });
});

function table(schema: string, name: string, refs: [string, string][] = []): CatalogTable {
  const full = tableName(schema, name);
  return {
    name: full,
    schema,
    table: name,
    kind: 'table',
    columns: [
      { name: 'id', type: 'bigint', notNull: true, hasDefault: false },
      ...refs.map(([c]) => ({ name: c, type: 'bigint', notNull: true, hasDefault: false })),
    ],
    primaryKey: ['id'],
    uniques: [],
    foreignKeys: refs.map(([c, to]) => ({
      name: `${c}_fkey`,
      table: full,
      columns: [c],
      references: to,
      referencedColumns: ['id'],
      validated: true,
      notNull: true,
      onDelete: 'no action',
    })),
    indexes: [],
    checks: [],
    rls: { enabled: false, forced: false },
    policies: [],
    estimatedRows: 1,
    owner: 'postgres',
  };
}

describe('the model resolves names as identifiers', () => {
  const accounts = tableName('public', 'accounts');
  const catalog: Catalog = {
    tables: [
      table('public', 'accounts'),
      table('my.schema', 't', [['account_id', accounts]]),
      table('my', 'schema.t'),
      table('public', 'Order', [['account_id', accounts]]),
      table('public', 'order'),
    ],
    schemas: ['my', 'my.schema', 'public'],
    extensions: [],
  } as unknown as Catalog;

  it('"my.schema".t is the dotted schema\'s table, not the decoy', () => {
    const analysis = analyzeTenancy(catalog, { owner: 'accounts', tables: { '"my.schema".t': { unresolved: 'delete' } } });
    const t = analysis.tables.find((a) => a.table === tableName('my.schema', 't'));
    expect(t?.role).toBe('tenant');
    expect(t?.unresolvedPolicy).toBe('delete');
    expect(analysis.tables.find((a) => a.table === tableName('my', 'schema.t'))?.unresolvedPolicy).toBe('fail');
  });

  it('a quoted part matches exactly; an unquoted one as written first, then folded', () => {
    const policyOf = (key: string, name: string) =>
      analyzeTenancy(catalog, { owner: 'accounts', tables: { [key]: 'ignore' } }).tables.find((a) => a.table === name)?.role;
    expect(policyOf('"Order"', 'public.Order')).toBe('ignore');
    expect(policyOf('Order', 'public.Order')).toBe('ignore');
    expect(policyOf('"order"', 'public.order')).toBe('ignore');
    expect(policyOf('public.ORDER', 'public.order')).toBe('ignore');
    expect(codeOf(() => analyzeTenancy(catalog, { owner: 'a.b.c' }))).toBe('name-invalid');
  });
});

describe('directives take quoted identifiers like SQL', () => {
  const defaults = { lockTimeoutMs: undefined, statementTimeoutMs: undefined, retries: 0 };
  const parse = (name: string, value: string) => parseDirectives('backfills/0001_x.sql', [{ name, value, line: 1 }], defaults);

  it('a batch over a table and a key with spaces and capitals', () => {
    expect(parse('batch', 'public."Customer Accounts" key="CustomerID" size=5000').batch).toEqual({
      table: 'public."Customer Accounts"',
      key: '"CustomerID"',
      size: 5000,
    });
    expect(parse('batch', '"my.schema"."a ""b"""   key="the key"').batch).toEqual({
      table: '"my.schema"."a ""b"""',
      key: '"the key"',
      size: 10000,
    });
  });

  it('a snapshot of tables whose names hold commas and spaces', () => {
    expect(parse('snapshot', 'public."a, b", "Order"').snapshot).toEqual({ kind: 'tables', tables: ['public."a, b"', '"Order"'], line: 1 });
  });

  it('an unquoted name with a space is refused with a message that reads', () => {
    let error: unknown;
    try {
      parse('batch', 'public.Customer Accounts key=id');
    } catch (e) {
      error = e;
    }
    expect((error as TenantifyError).code).toBe('directive-invalid');
    expect((error as TenantifyError).exitCode).toBe(2);
    expect((error as Error).message).not.toMatch(/expected unexpected/);
  });
});

describe('a transaction-off unit whose verify failed is retried after the fix', () => {
  const before = [statement('CREATE INDEX CONCURRENTLY IF NOT EXISTS t ON t (k)'), statement('ANALYZE t')];
  const failed = row('0001_idx', {
    status: 'failed',
    checksum: 'old',
    progress: { statements: before.map((s) => s.hash) },
    error: { message: 'verify failed', code: 'verify_failed' },
  });

  it('an edited unit runs again from the first statement that changed, and is not drift', () => {
    const edited = unit('0001_idx', {
      checksum: 'new',
      options: { transaction: false },
      statements: [statement('CREATE INDEX CONCURRENTLY IF NOT EXISTS t_k_idx ON t (k)'), before[1] as Statement],
    });
    const [entry] = planRun([edited], [failed]).entries;
    expect(entry).toMatchObject({ drift: false, action: 'run', resume: { kind: 'statement', statement: 0 } });
  });

  it('an unchanged unit runs only its verify again', () => {
    const same = unit('0001_idx', { checksum: 'old', options: { transaction: false }, statements: before });
    expect(planRun([same], [failed]).entries[0]?.resume).toEqual({ kind: 'statement', statement: 2 });
  });

  it('a unit that failed on a statement still may not change under its done statements', () => {
    const midway = { ...failed, error: { message: 'boom', sqlstate: '42P01' } };
    const edited = unit('0001_idx', {
      checksum: 'new',
      options: { transaction: false },
      statements: [statement('SELECT 2'), before[1] as Statement],
    });
    expect(planRun([edited], [midway]).entries[0]?.drift).toBe(true);
  });
});

describe('generated names fit 63 bytes and never collide', () => {
  const multiByte = 'ä'.repeat(31) + 'x'; // 63 bytes, 32 characters

  it('cuts in bytes at a character boundary, with a hash of the whole', () => {
    expect(Buffer.byteLength(multiByte)).toBe(63);
    const names = ['idx', 'not_null', 'fkey', 'key'].map((s) => pgName(multiByte, 'organization_id', s));
    for (const name of names) {
      expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
      expect(name).not.toBe(multiByte);
      expect(name).not.toContain('\uFFFD');
    }
    expect(new Set(names).size).toBe(names.length);
    expect(cutToBytes('aä', 2)).toBe('a');
  });

  it('ASCII names keep the names earlier scaffolds gave them', () => {
    expect(pgName('tasks', 'organization_id', 'idx')).toBe('tasks_organization_id_idx');
    const long = 'a'.repeat(63);
    expect(pgName(long, 'idx')).toMatch(/^a{54}_[0-9a-f]{8}$/);
  });

  it('tables that keep rows are named apart for "Order" and order, and for schemas that read alike', () => {
    const names = [
      tableName('public', 'Order'),
      tableName('public', 'order'),
      tableName('a.b', 'c'),
      tableName('a', 'b.c'),
      tableName('a_b', 'c'),
      tableName('public', 'a_b_c'),
    ].map((t) => keptTableName(t, 'unresolved'));
    expect(new Set(names).size).toBe(names.length);
    for (const name of [...names, keptTableName(tableName('sch', multiByte), 'detached')])
      expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
  });
});

describe('a key column that exists with another type', () => {
  function world(keyType: string): { analysis: TenancyAnalysis; catalog: Catalog } {
    const accounts = table('public', 'accounts');
    const tasks = table('public', 'Task Items', [['account_id', tableName('public', 'accounts')]]);
    tasks.columns.push({ name: 'organization_id', type: keyType, notNull: false, hasDefault: false });
    const catalog = { tables: [accounts, tasks], schemas: ['public'], extensions: [] } as unknown as Catalog;
    return { analysis: analyzeTenancy(catalog, { owner: 'accounts' }), catalog };
  }

  it('is refused with the table, both types and a code (exit 2)', () => {
    const { analysis, catalog } = world('text');
    expect(keyTypeMismatches(analysis, catalog)).toEqual([
      { table: 'public.Task Items', column: 'organization_id', type: 'text', expected: 'bigint' },
    ]);
    let error: unknown;
    try {
      ensureKeyTypes(analysis, catalog);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'tenant-key-type-mismatch', exitCode: 2 });
  });

  it('an integer beside a bigint key compares, and is not refused', () => {
    const { analysis, catalog } = world('integer');
    expect(keyTypeMismatches(analysis, catalog)).toEqual([]);
  });
});

describe('analyze output keeps names apart', () => {
  const accounts = tableName('public', 'accounts');
  const pizza = table('public', '🍕pizza🍕', [['account_id', accounts]]);
  const underscores = table('public', '__pizza__', [['account_id', accounts]]);
  const quoted = table('public', 'say "cheese"', [['account_id', accounts]]);
  // Two nullable paths: the second is a fallback.
  const notes = table('public', 'notes', [
    ['pizza_id', pizza.name],
    ['account_id', accounts],
  ]);
  for (const fk of notes.foreignKeys) fk.notNull = false;
  const catalog = {
    tables: [table('public', 'accounts'), pizza, underscores, quoted, notes],
    schemas: ['public'],
    extensions: [],
  } as unknown as Catalog;
  const analysis = analyzeTenancy(catalog, { owner: 'accounts' });

  it('mermaid: one node per table, quotes escaped in labels', () => {
    const graph = mermaidGraph(analysis);
    const nodes = graph
      .split('\n')
      .filter((l) => /^\s{4}\S+\[/.test(l))
      .map((l) => l.trim().split('[')[0]);
    expect(nodes).toHaveLength(5);
    expect(new Set(nodes).size).toBe(5);
    // Every label is one quoted string: its quotes are entity codes.
    for (const line of graph.split('\n').filter((l) => /^\s{4}\S+\[/.test(l))) expect(line).toMatch(/^\s{4}\S+\["[^"]*"\]$/);
    expect(graph).toContain('cheese#quot;');
  });

  it('--json gives the fallback paths the text table shows', () => {
    const json = analyzeJson(analysis);
    const row = json.tables.find((t) => t.table === 'public.notes') as {
      via: unknown[];
      fallbacks?: { table: string; references: string }[][];
    };
    expect(row.via).toHaveLength(1);
    expect(row.fallbacks).toEqual([
      [
        expect.objectContaining({ table: 'public.notes', references: 'public.🍕pizza🍕' }),
        expect.objectContaining({ table: 'public.🍕pizza🍕', references: 'public.accounts' }),
      ],
    ]);
  });
});

describe('someNames', () => {
  it('lists a few names whole, and a long list as its first three and how many more', () => {
    expect(someNames(['a', 'b', 'c', 'd'])).toBe('a, b, c, d');
    const partitions = Array.from({ length: 55 }, (_, i) => `payment_p${i}`);
    expect(someNames(partitions)).toBe('payment_p0, payment_p1, payment_p2 and 52 more');
  });
});
