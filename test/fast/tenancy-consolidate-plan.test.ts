/** tenancy consolidate's pure core, without a database: the preflight's shape comparison, the table order, the plan's SQL text. */
import { describe, expect, it } from 'vitest';
import { TenantifyError } from '../../src/errors.js';
import {
  consolidatePlan,
  orderTables,
  readSourceMarker,
  type ConsolidateOptions,
  type ConsolidateSource,
} from '../../src/tenancy/consolidate/plan.js';
import { compareShapes, withoutSchema, type SourceShape, type SourceTable } from '../../src/tenancy/consolidate/shape.js';
import type { CatalogTable } from '../../src/tenancy/types.js';

interface Spec {
  columns: [string, string, boolean?][];
  pk: string[];
  fks?: { name: string; columns: string[]; references: string; referencedColumns: string[]; onDelete?: string }[];
  indexes?: string[];
  serial?: string;
}

function table(schema: string, name: string, spec: Spec): SourceTable {
  const catalog: CatalogTable = {
    name: `${schema}.${name}`,
    schema,
    table: name,
    kind: 'table',
    columns: spec.columns.map(([column, type, nullable]) => ({
      name: column,
      type,
      notNull: !nullable,
      hasDefault: column === spec.serial,
    })),
    primaryKey: spec.pk,
    uniques: [{ name: `${name}_pkey`, kind: 'primary', columns: spec.pk, definition: `PRIMARY KEY (${spec.pk.join(', ')})` }],
    foreignKeys: (spec.fks ?? []).map((f) => ({
      ...f,
      table: `${schema}.${name}`,
      validated: true,
      notNull: false,
      onDelete: f.onDelete ?? 'no action',
      definition: `FOREIGN KEY (${f.columns.join(', ')}) REFERENCES ${f.references}(${f.referencedColumns.join(', ')})`,
    })),
    indexes: (spec.indexes ?? []).map((columns, i) => ({
      name: `${name}_${i}_idx`,
      columns: [columns],
      unique: false,
      valid: true,
      partial: false,
      constraint: false,
      definition: `CREATE INDEX ${name}_${i}_idx ON ${schema}.${name} USING btree (${columns})`,
    })),
    checks: [],
    rls: { enabled: false, forced: false },
    policies: [],
    estimatedRows: 0,
    owner: 'app',
  };
  return { catalog, defaults: spec.serial ? { [spec.serial]: `nextval('${schema}.${name}_${spec.serial}_seq'::regclass)` } : {} };
}

function shape(schema: string, change: (tables: Record<string, Spec>) => void = () => {}): SourceShape {
  const specs: Record<string, Spec> = {
    users: {
      columns: [
        ['id', 'integer'],
        ['email', 'text'],
        ['manager_id', 'integer', true],
      ],
      pk: ['id'],
      serial: 'id',
      fks: [
        {
          name: 'users_manager_id_fkey',
          columns: ['manager_id'],
          references: `${schema}.users`,
          referencedColumns: ['id'],
          onDelete: 'set null',
        },
      ],
    },
    tags: {
      columns: [
        ['slug', 'text'],
        ['label', 'text'],
      ],
      pk: ['slug'],
    },
    notes: {
      columns: [
        ['id', 'bigint'],
        ['user_id', 'integer'],
        ['tag', 'text', true],
        ['country', 'text', true],
      ],
      pk: ['id'],
      serial: 'id',
      indexes: ['user_id'],
      fks: [
        { name: 'notes_user_id_fkey', columns: ['user_id'], references: `${schema}.users`, referencedColumns: ['id'] },
        { name: 'notes_tag_fkey', columns: ['tag'], references: `${schema}.tags`, referencedColumns: ['slug'] },
        { name: 'notes_country_fkey', columns: ['country'], references: 'public.countries', referencedColumns: ['code'] },
      ],
    },
  };
  change(specs);
  return { source: schema, schema, tables: Object.entries(specs).map(([name, spec]) => table(schema, name, spec)) };
}

const options: ConsolidateOptions = {
  into: 'public',
  tenants: 'organizations',
  key: 'organization_id',
  ids: 'keep',
  idsSchema: 'consolidated_ids',
};

describe('the preflight', () => {
  it('finds nothing between sources of one shape: their own schema names are left out of definitions', () => {
    expect(compareShapes(shape('customer_a'), [shape('customer_a'), shape('customer_b')])).toEqual([]);
  });

  it('names the source, the table and each difference: extra column, another type, a missing index, a missing table', () => {
    const drifted = shape('customer_z', (t) => {
      (t['notes'] as Spec).columns.push(['priority', 'integer']);
      (t['users'] as Spec).columns[1] = ['email', 'character varying(80)'];
      (t['notes'] as Spec).indexes = [];
      delete t['tags'];
      (t['notes'] as Spec).fks = (t['notes'] as Spec).fks?.filter((f) => f.name !== 'notes_tag_fkey');
    });
    const drifts = compareShapes(shape('customer_a'), [shape('customer_a'), drifted]);
    expect(drifts.map((d) => `${d.source}.${d.table} ${d.kind}`).sort()).toEqual([
      'customer_z.notes extra-column',
      'customer_z.notes missing-constraint',
      'customer_z.notes missing-index',
      'customer_z.tags missing-table',
      'customer_z.users column-type',
    ]);
    expect(drifts.find((d) => d.kind === 'extra-column')?.detail).toBe('extra column priority (integer)');
  });

  it('takes a schema out of qualified names, quoted or not, and leaves names that merely end like it', () => {
    expect(withoutSchema('REFERENCES customer_a.users(id)', 'customer_a')).toBe('REFERENCES users(id)');
    expect(withoutSchema('REFERENCES "Kunde A".users(id)', 'Kunde A')).toBe('REFERENCES users(id)');
    expect(withoutSchema('REFERENCES old_customer_a.users(id)', 'customer_a')).toBe('REFERENCES old_customer_a.users(id)');
  });
});

describe('the plan', () => {
  const sources: ConsolidateSource[] = [
    { name: 'customer_a', schema: 'customer_a', tenantId: 1, bounds: { users: ['50'], notes: ['100', '200'] } },
    { name: 'customer_b', schema: 'customer_b', tenantId: 2, bounds: {} },
  ];

  it("each source's unit names its source, tenant, key and shared tables for apply --json (SQL, --parallel and database units); no other unit does", () => {
    const sized = sources.map((s, i) => ({ ...s, bytes: 8192 * (i + 1) }));
    const expected = (i: number) => ({
      source: sized[i]?.name,
      tenantId: i + 1,
      key: 'organization_id',
      tables: [
        ['public', 'tags'],
        ['public', 'users'],
        ['public', 'notes'],
      ],
      bytes: 8192 * (i + 1),
    });
    const plain = consolidatePlan(shape('customer_a'), sized, options);
    expect(plain.map((u) => readSourceMarker(u.sql))).toEqual([undefined, expected(0), expected(1)]);
    const parallel = consolidatePlan(shape('customer_a'), sized, { ...options, parallel: 2 });
    expect(parallel.map((u) => readSourceMarker(u.sql))).toEqual([undefined, undefined, expected(0), expected(1)]);
    const databases = sized.map((s) => ({
      ...s,
      schema: `consolidate_stage_${s.name}`,
      database: { schema: 'app', sourcesPath: '../sources.txt' },
    }));
    const staged = consolidatePlan(shape('customer_a'), databases, options);
    expect(staged[1]?.format).toBe('ts');
    expect(staged.map((u) => readSourceMarker(u.sql))).toEqual([
      undefined,
      { ...expected(0), stage: 'consolidate_stage_customer_a' },
      { ...expected(1), stage: 'consolidate_stage_customer_b' },
    ]);
  });

  it('orders tables parents first, and refuses a cycle', () => {
    expect(orderTables(shape('s')).map((t) => t.catalog.table)).toEqual(['tags', 'users', 'notes']);
    const cyclic = shape('s', (t) =>
      (t['users'] as Spec).fks?.push({ name: 'users_note_fkey', columns: ['email'], references: 's.notes', referencedColumns: ['id'] }),
    );
    expect(() => orderTables(cyclic)).toThrow(expect.objectContaining({ code: 'consolidate-foreign-key-cycle', exitCode: 2 }));
  });

  it('--ids keep: the key first in keys and foreign keys between shared tables, lookups as they were, one unit per source', () => {
    const units = consolidatePlan(shape('customer_a'), sources, options);
    expect(units.map((u) => [u.kind, u.name])).toEqual([
      ['migration', 'consolidate_shared_tables'],
      ['backfill', 'consolidate_customer_a'],
      ['backfill', 'consolidate_customer_b'],
    ]);
    const ddl = units[0]?.sql ?? '';
    expect(ddl).toContain('CONSTRAINT notes_pkey PRIMARY KEY (organization_id, id)');
    expect(ddl).toContain('FOREIGN KEY (organization_id, user_id) REFERENCES public.users (organization_id, id)');
    expect(ddl).toContain(
      'FOREIGN KEY (organization_id, manager_id) REFERENCES public.users (organization_id, id) ON DELETE SET NULL (manager_id)',
    );
    expect(ddl).toContain('FOREIGN KEY (country) REFERENCES public.countries (code)');
    expect(ddl).toContain('CREATE INDEX notes_0_idx ON public.notes USING btree (organization_id, user_id)');
    // Every foreign key between shared tables is indexed (the rollback deletes parents).
    expect(ddl).toContain('CREATE INDEX users_organization_id_manager_id_idx ON public.users (organization_id, manager_id)');
    const copy = units[1]?.sql ?? '';
    // One transaction in one snapshot: the statements and the verify sections read the source as of one moment.
    expect(copy).not.toMatch(/^-- tenantify:transaction off$/m);
    expect(copy.split('\n').find((line) => !line.startsWith('--') && line.trim() !== '')).toBe(
      'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;',
    );
    expect(copy).not.toContain('LOCK TABLE');
    expect(copy).toContain(' WHERE s.id <= 100;\n');
    expect(copy).toContain(' WHERE s.id > 100 AND s.id <= 200;\n');
    expect(copy).toContain(' WHERE s.id > 200;\n');
    // One transaction: the copies are plain inserts (a row already there fails the unit); a source database's unit,
    // committed statement by statement, skips the rows an earlier run committed.
    expect(copy).not.toMatch(/^INSERT INTO public\.notes[^;]*ON CONFLICT/m);
    const staged = consolidatePlan(
      shape('customer_a'),
      [
        { ...sources[0], schema: 'consolidate_stage_customer_a', database: { schema: 'app', sourcesPath: '../sources.txt' } },
      ] as ConsolidateSource[],
      options,
    );
    expect(staged[1]?.sql).toMatch(
      /^ {2}`INSERT INTO public\.notes[^;`]*\n WHERE s\.id <= 100\nON CONFLICT \(organization_id, id\) DO NOTHING;`,$/m,
    );
    // Copied in several ranges, the self-reference comes in a second pass (a row may reference one of a later range).
    expect(copy).toContain('SELECT 1, s.id, s.email, NULL\n');
    expect(copy).toContain('UPDATE public.users t SET manager_id = s.manager_id');
    expect(copy).toMatch(/SELECT setval\('public\.notes_id_seq'/);
    expect(units[1]?.rollback).toContain(
      'DELETE FROM public.notes WHERE organization_id = 1;\nDELETE FROM public.users WHERE organization_id = 1;\nDELETE FROM public.tags WHERE organization_id = 1;',
    );
  });

  it('--citus: tables created without foreign keys, placed while empty (tenants by id, every shared table colocated with it, lookups reference tables), then the foreign keys; the rollback undistributes the lookups', () => {
    const units = consolidatePlan(shape('customer_a'), sources, { ...options, citus: true });
    const ddl = units[0]?.sql ?? '';
    const created = ddl.slice(0, ddl.indexOf('SET LOCAL citus.multi_shard_modify_mode'));
    // No foreign key before every table is placed: Citus distributes no table that references a plain one.
    expect(created).toContain('CREATE TABLE public.notes (');
    expect(created).not.toMatch(/REFERENCES|FOREIGN KEY/);
    const placement = ddl
      .slice(created.length)
      .split('\n')
      .filter((line) => line.startsWith('SELECT create_'));
    expect(placement).toEqual([
      "SELECT create_reference_table('public.countries');",
      "SELECT create_distributed_table('public.organizations', 'id');",
      "SELECT create_distributed_table('public.tags', 'organization_id', colocate_with => 'public.organizations');",
      "SELECT create_distributed_table('public.users', 'organization_id', colocate_with => 'public.organizations');",
      "SELECT create_distributed_table('public.notes', 'organization_id', colocate_with => 'public.organizations');",
    ]);
    // The foreign keys after the placement, with the key between shared tables; SET NULL (refused by Citus) becomes NO ACTION.
    const keys = ddl.slice(ddl.lastIndexOf('SELECT create_'));
    expect(keys).toContain(
      'ALTER TABLE public.notes ADD CONSTRAINT notes_user_id_fkey FOREIGN KEY (organization_id, user_id) REFERENCES public.users (organization_id, id);',
    );
    expect(keys).toContain(
      'ALTER TABLE public.users ADD CONSTRAINT users_manager_id_fkey FOREIGN KEY (organization_id, manager_id) REFERENCES public.users (organization_id, id);',
    );
    expect(keys).toContain(
      'ALTER TABLE public.notes ADD CONSTRAINT notes_country_fkey FOREIGN KEY (country) REFERENCES public.countries (code);',
    );
    expect(keys).toContain(
      'ALTER TABLE public.tags ADD CONSTRAINT tags_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations (id);',
    );
    expect(ddl.split('\n').filter((line) => !line.startsWith('--') && line.includes('SET NULL'))).toEqual([]);
    expect(ddl).toMatch(/^-- Citus refuses ON DELETE SET NULL .*users\.users_manager_id_fkey \(ON DELETE SET NULL\)$/m);
    // The rollback drops the new tables, then gives the lookup table back as a plain table (once, if still distributed).
    const rollback = units[0]?.rollback ?? '';
    expect(rollback.indexOf('DROP TABLE public.organizations;')).toBeLessThan(rollback.indexOf('undistribute_table'));
    expect(rollback).toContain(
      "SELECT undistribute_table('public.countries', cascade_via_foreign_keys => true) FROM pg_dist_partition WHERE logicalrelid = 'public.countries'::regclass;",
    );
    // Without --citus: no Citus call anywhere.
    const plain = consolidatePlan(shape('customer_a'), sources, options);
    expect(plain.map((u) => u.sql + u.rollback).join('\n')).not.toMatch(/citus|distribute|reference_table/i);
    // The copy units are the same statements either way, but the statistics (the shards are planned by the nodes).
    const statistics = /^-- [^\n]*: statistics of [^\n]*\nANALYZE [^\n]*\n\n/gm;
    expect(plain[1]?.sql).toMatch(statistics);
    expect(units.slice(1).map((u) => u.sql)).toEqual(plain.slice(1).map((u) => u.sql.replace(statistics, '')));
  });

  it('--ids remap: mapping tables for serial keys, references rewritten through them, natural keys kept', () => {
    const units = consolidatePlan(shape('customer_a'), sources, { ...options, ids: 'remap' });
    const ddl = units[0]?.sql ?? '';
    expect(ddl).toContain('CREATE TABLE consolidated_ids.users (');
    expect(ddl).toContain('CREATE TABLE consolidated_ids.notes (');
    expect(ddl).not.toContain('consolidated_ids.tags');
    const copy = units[2]?.sql ?? '';
    expect(copy).toContain("SELECT 2, s.id, nextval('public.users_id_seq') FROM customer_b.users s");
    expect(copy).toContain('SELECT 2, m.new_id, r_user_id.new_id, s.tag, s.country');
    // customer_b's users are one range: the self-reference comes with the rows, rewritten through the map (PostgreSQL
    // checks the foreign key at the end of the statement, once every row is there); no second pass.
    expect(copy).toContain('SELECT 2, m.new_id, s.email, r_manager_id.new_id\n');
    expect(copy).not.toContain('UPDATE public.users');
    expect(units[1]?.sql).toContain('UPDATE public.users t SET manager_id = r_manager_id.new_id');
    expect(copy).not.toContain('setval');
    expect(units[2]?.rollback).toContain('DELETE FROM consolidated_ids.users WHERE organization_id = 2;');
  });

  it('--freeze: the source is locked against writes (EXCLUSIVE: reads go on) before the snapshot is taken', () => {
    const units = consolidatePlan(shape('customer_a'), sources, { ...options, freeze: true });
    const copy = units[2]?.sql ?? '';
    const lock = copy.indexOf('LOCK TABLE customer_b.tags, customer_b.users, customer_b.notes IN EXCLUSIVE MODE;');
    expect(lock).toBeGreaterThan(copy.indexOf('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;'));
    // Before the first statement that reads: the snapshot is taken after the lock.
    expect(lock).toBeLessThan(copy.indexOf('INSERT INTO'));
  });

  it('--parallel: one TypeScript unit copies the sources side by side, the sequences once after them; each source keeps a unit that verifies it and is its rollback', () => {
    const units = consolidatePlan(shape('customer_a'), sources, { ...options, parallel: 4, freeze: true });
    expect(units.map((u) => [u.kind, u.format, u.name])).toEqual([
      ['migration', 'sql', 'consolidate_shared_tables'],
      ['backfill', 'ts', 'consolidate_copy'],
      ['backfill', 'sql', 'consolidate_customer_a'],
      ['backfill', 'sql', 'consolidate_customer_b'],
    ]);
    const copy = units[1]?.sql ?? '';
    expect(copy).toContain('copySources(ctx, { parallel: 4,');
    expect(copy).toContain('lock: `LOCK TABLE customer_b.tags, customer_b.users, customer_b.notes IN EXCLUSIVE MODE;`');
    // Sources copied side by side would each set a sequence from what they see: once, after all of them.
    expect(copy.match(/setval\('public\.notes_id_seq'/g)).toHaveLength(1);
    expect(copy.indexOf("setval('public.notes_id_seq'")).toBeGreaterThan(copy.indexOf('const after'));
    const own = units[3]?.sql ?? '';
    expect(own).not.toContain('INSERT INTO');
    expect(own).toMatch(/^-- tenantify:verify customer_b\.notes arrived whole/m);
    expect(units[3]?.rollback).toBe(consolidatePlan(shape('customer_a'), sources, options)[2]?.rollback);
  });

  it('refuses a table without a primary key', () => {
    const noKey = shape('s', (t) => ((t['tags'] as Spec).pk = []));
    let error: unknown;
    try {
      consolidatePlan(noKey, sources, options);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TenantifyError);
    expect((error as TenantifyError).code).toBe('consolidate-no-primary-key');
  });
});
