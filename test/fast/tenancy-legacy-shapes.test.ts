/**
 * Legacy shapes without a database (TENANCY.md, "Real legacy schemas"): partitioned tables
 * whose foreign keys live on their partitions, tables without a primary key, views over
 * tenant tables, the hints analyze gives and the ties it shows. Hand-made catalogs through
 * the graph and the scaffold; every unit and rollback goes through the plan's own parser.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlParser, parseSqlUnit } from '../../src/plan/sql-unit.js';
import { analyzeTenancy, ownerHints } from '../../src/tenancy/graph.js';
import { tenancyConfigFrom } from '../../src/tenancy/model.js';
import { scaffoldPlan, type ScaffoldUnit } from '../../src/tenancy/scaffold/index.js';
import { candidateConflicts, preferredCandidates } from '../../src/tenancy/analyze-data.js';
import type { Catalog, CatalogTable, CatalogView, TableAnalysis, TenancyAnalysis } from '../../src/tenancy/types.js';

beforeAll(async () => {
  await loadSqlParser();
});

/** `name` with columns `col:type!` (! NOT NULL), foreign keys `col>table`, a primary key (default `id`). */
function table(name: string, columns: string[], options: { pk?: string[] | null; kind?: CatalogTable['kind'] } = {}): CatalogTable {
  const t: CatalogTable = {
    name: `public.${name}`,
    schema: 'public',
    table: name,
    kind: options.kind ?? 'table',
    columns: [],
    primaryKey: options.pk === undefined ? ['id'] : options.pk,
    uniques: [],
    foreignKeys: [],
    indexes: [],
    checks: [],
    rls: { enabled: false, forced: false },
    policies: [],
    estimatedRows: 100,
    owner: 'postgres',
  };
  for (const spec of columns) {
    const m = /^(\w+)(?::([\w ()]+))?(!?)(?:>(\w+))?$/.exec(spec);
    if (!m) throw new Error(`bad spec ${spec}`);
    const [, column, type, bang, ref] = m as unknown as [string, string, string | undefined, string, string | undefined];
    const notNull = bang === '!' || t.primaryKey?.includes(column) === true;
    t.columns.push({ name: column, type: type ?? 'integer', notNull, hasDefault: false });
    if (ref)
      t.foreignKeys.push({
        name: `${name}_${column}_fkey`,
        table: t.name,
        columns: [column],
        references: `public.${ref}`,
        referencedColumns: ['id'],
        validated: true,
        notNull,
        onDelete: 'no action',
      });
  }
  return t;
}

/** A partitioned table whose foreign keys are declared on the partitions named in `on` (each key: its column). */
function partitioned(t: CatalogTable, partitions: string[], on: Record<string, string[]>): CatalogTable {
  t.kind = 'partitioned';
  t.partitions = partitions.map((p) => ({ name: `public.${p}`, foreignKeys: [] }));
  t.foreignKeys = t.foreignKeys.map((fk) => {
    const holders = on[fk.columns[0] as string] ?? partitions;
    const list = holders.map((p) => ({ table: `public.${p}`, name: `${p}_${fk.columns[0]}_fkey` }));
    for (const h of list) t.partitions?.find((p) => p.name === h.table)?.foreignKeys.push(h.name);
    return { ...fk, name: list[0]?.name ?? fk.name, partitions: list, validated: holders.length === partitions.length };
  });
  return t;
}

function view(name: string, reads: string[], kind: CatalogView['kind'] = 'view'): CatalogView {
  return {
    name: `public.${name}`,
    kind,
    owner: 'postgres',
    ownerBypassesRls: true,
    securityInvoker: null,
    reads: reads.map((r) => `public.${r}`),
  };
}

function catalogOf(tables: CatalogTable[], views: CatalogView[] = [], serverVersion = 150004): Catalog {
  return { tables, schemas: ['public'], extensions: [], views, serverVersion };
}

/** A rental shop: stores own staff, customers and inventory; rentals reach a store three ways; payment is partitioned. */
function shop(): CatalogTable[] {
  return [
    table('stores', ['id', 'manager:text!']),
    table('staff', ['id', 'store_id!>stores', 'username:text!']),
    table('customer', ['id', 'store_id!>stores', 'loyalty_card_id:text', 'ap_id:character varying(255)']),
    table('film', ['id', 'title:text!']),
    table('inventory', ['id', 'film_id!>film', 'store_id!>stores']),
    table('rental', ['id', 'inventory_id!>inventory', 'customer_id!>customer', 'staff_id!>staff']),
    partitioned(
      table('payment', ['id', 'paid_at:date!', 'rental_id>rental', 'customer_id!>customer', 'staff_id!>staff'], { pk: ['id', 'paid_at'] }),
      ['payment_2022_01', 'payment_2022_02', 'payment_2022_03'],
      {
        rental_id: ['payment_2022_01', 'payment_2022_02'],
        customer_id: ['payment_2022_01', 'payment_2022_02'],
        staff_id: ['payment_2022_01', 'payment_2022_02'],
      },
    ),
    table('rental_log', ['rental_id!>rental', 'event:text!'], { pk: null }),
  ];
}

const find = (a: TenancyAnalysis, name: string): TableAnalysis => {
  const t = a.tables.find((x) => x.table === `public.${name}`);
  if (!t) throw new Error(`no ${name}`);
  return t;
};

const defaults = { lockTimeoutMs: undefined, statementTimeoutMs: undefined, retries: 3 };
const parse = (file: string, text: string) => parseSqlUnit(file, text, defaults);

function units(analysis: TenancyAnalysis, catalog: Catalog, options = { composite: true, rls: true }): ScaffoldUnit[] {
  const plan = scaffoldPlan(analysis, catalog, options);
  for (const u of plan) {
    parse(`${u.name}.sql`, u.sql);
    parse(`rollbacks/${u.name}.sql`, u.rollback);
  }
  return plan;
}

describe('partitioned tables', () => {
  it('are one tenant table whose hops are the foreign keys declared on their partitions, listed with their partitions', () => {
    const a = analyzeTenancy(catalogOf(shop()), { owner: 'stores' });
    const payment = find(a, 'payment');
    expect(payment.role).toBe('tenant');
    expect(payment.via.map((h) => `${h.table}.${h.columns.join()}`)).toEqual(['public.payment.customer_id', 'public.customer.store_id']);
    expect(payment.partitions).toEqual(['public.payment_2022_01', 'public.payment_2022_02', 'public.payment_2022_03']);
    // The partition without the foreign keys is named.
    expect(a.hints).toContainEqual(
      expect.objectContaining({
        table: 'public.payment',
        column: 'rental_id',
        hint: expect.stringContaining('public.payment_2022_03 has none'),
      }),
    );
  });

  it('accept a partition foreign key column in via', () => {
    const a = analyzeTenancy(catalogOf(shop()), { owner: 'stores', tables: { payment: { via: ['rental_id'] } } });
    // rental_id, then rental's own derivation.
    expect(find(a, 'payment').via.map((h) => h.columns.join())).toEqual(['rental_id', 'customer_id', 'store_id']);
  });

  it('hint a missing foreign key the way the server allows: per partition before PostgreSQL 18, NOT VALID on the parent from 18', () => {
    const withNote = (version: number) => {
      const tables = shop();
      (tables.find((t) => t.table === 'payment') as CatalogTable).columns.push({
        name: 'film_id',
        type: 'integer',
        notNull: false,
        hasDefault: false,
      });
      return analyzeTenancy(catalogOf(tables, [], version), { owner: 'stores' }).hints.find((h) => h.column === 'film_id')?.hint;
    };
    expect(withNote(150004)).toContain('add the foreign key to each partition');
    expect(withNote(150004)).not.toContain('NOT VALID first on a live database');
    expect(withNote(180000)).toContain('NOT VALID first on a live database');
  });

  it('are scaffolded with the key on the parent, the foreign keys per partition, the index ON ONLY then attached, and a backfill per partition', () => {
    const catalog = catalogOf(shop());
    const plan = units(analyzeTenancy(catalog, { owner: 'stores' }), catalog);
    const key = plan.find((u) => u.name === 'payment_organization_id') as ScaffoldUnit;
    expect(key.sql).toContain('ALTER TABLE public.payment ADD COLUMN organization_id bigint;');
    expect(key.sql).not.toMatch(/ALTER TABLE public\.payment ADD CONSTRAINT \S+ FOREIGN KEY/);
    for (const p of ['payment_2022_01', 'payment_2022_02', 'payment_2022_03']) {
      expect(key.sql).toContain(
        `ALTER TABLE public.${p} ADD CONSTRAINT ${p}_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations (id) NOT VALID;`,
      );
    }
    const index = plan.find((u) => u.name === 'payment_organization_id_index') as ScaffoldUnit;
    expect(index.sql).toContain('CREATE INDEX IF NOT EXISTS payment_organization_id_idx ON ONLY public.payment (organization_id);');
    expect(index.sql).toContain(
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS payment_2022_03_organization_id_idx ON public.payment_2022_03 (organization_id);',
    );
    expect(index.sql).toContain(
      'ALTER INDEX public.payment_organization_id_idx ATTACH PARTITION public.payment_2022_03_organization_id_idx;',
    );
    expect(index.sql).not.toMatch(/CONCURRENTLY[^;]* ON public\.payment \(/);
    expect(plan.filter((u) => u.name.startsWith('backfill_payment')).map((u) => u.name)).toEqual([
      'backfill_payment_2022_01_organization_id',
      'backfill_payment_2022_02_organization_id',
      'backfill_payment_2022_03_organization_id',
    ]);
    const validate = plan.find((u) => u.name === 'payment_organization_id_validate') as ScaffoldUnit;
    expect(validate.sql).toContain('ALTER TABLE public.payment_2022_01 VALIDATE CONSTRAINT payment_organization_id_not_null;');
    expect(validate.sql).toContain('ALTER TABLE public.payment VALIDATE CONSTRAINT payment_organization_id_not_null;');
    expect(validate.sql.indexOf('public.payment_2022_03 VALIDATE CONSTRAINT payment_organization_id_not_null')).toBeLessThan(
      validate.sql.indexOf('public.payment VALIDATE CONSTRAINT'),
    );
    // Composite foreign keys go where the legacy ones are: the two partitions that have them.
    const composite = plan.find((u) => u.name === 'payment_tenant_foreign_keys') as ScaffoldUnit;
    expect(composite.sql).toContain('ALTER TABLE public.payment_2022_01 ADD CONSTRAINT payment_2022_01_organization_id_customer_id_fkey');
    expect(composite.sql).not.toContain('public.payment_2022_03 ADD CONSTRAINT');
    expect(composite.sql).not.toMatch(/ALTER TABLE public\.payment ADD CONSTRAINT/);
  });
});

describe('tables without a primary key', () => {
  it('are no longer "cannot be batched": analyze says how they will be walked', () => {
    const a = analyzeTenancy(catalogOf(shop()), { owner: 'stores' });
    const hint = a.hints.find((h) => h.table === 'public.rental_log' && !h.column)?.hint;
    expect(hint).toContain('physical ranges');
    expect(hint).not.toContain('cannot be batched');
  });

  it('are backfilled in batches of physical block ranges, cleared the same way by the rollback', () => {
    const catalog = catalogOf(shop());
    const plan = units(analyzeTenancy(catalog, { owner: 'stores' }), catalog);
    const backfill = plan.find((u) => u.name === 'backfill_rental_log_organization_id') as ScaffoldUnit;
    const parsed = parse('backfill.sql', backfill.sql);
    expect(parsed.options.batch).toEqual({ table: 'public.rental_log', key: 'ctid', size: 5000 });
    expect(backfill.sql).toContain("t.ctid >= format('(%s,0)', $1::bigint + 1)::tid AND t.ctid < format('(%s,0)', $2::bigint + 1)::tid");
    expect(backfill.sql).toContain('t.organization_id IS NULL');
    expect(parse('rollback.sql', backfill.rollback).options.batch).toEqual({ table: 'public.rental_log', key: 'ctid', size: 5000 });
    expect(backfill.rollback).toContain(
      "t.ctid >= format('(%s,0)', $1::bigint + 1)::tid AND t.ctid < format('(%s,0)', $2::bigint + 1)::tid\n   AND t.organization_id IS NOT NULL",
    );
  });

  it('are batched by a unique NOT NULL column when they have one', () => {
    const tables = shop();
    const log = tables.find((t) => t.table === 'rental_log') as CatalogTable;
    log.columns.push({ name: 'seq', type: 'bigint', notNull: true, hasDefault: true });
    log.indexes.push({ name: 'rental_log_seq', columns: ['seq'], unique: true, valid: true, partial: false });
    const catalog = catalogOf(tables);
    const a = analyzeTenancy(catalog, { owner: 'stores' });
    expect(a.hints.find((h) => h.table === 'public.rental_log' && !h.column)?.hint).toContain('unique NOT NULL column seq');
    const backfill = units(a, catalog).find((u) => u.name === 'backfill_rental_log_organization_id') as ScaffoldUnit;
    expect(parse('b.sql', backfill.sql).options.batch).toEqual({ table: 'public.rental_log', key: 'seq', size: 5000 });
  });
});

describe('views over tenant tables', () => {
  const views = [
    view('customer_list', ['customer']),
    view('customer_rentals', ['customer_list', 'rental']),
    view('film_list', ['film']),
    view('store_revenue', ['payment', 'staff'], 'materialized'),
  ];

  it('are listed by analyze, through other views too; views over global tables are not', () => {
    const a = analyzeTenancy(catalogOf(shop(), views), { owner: 'stores' });
    expect((a.views ?? []).map((v) => `${v.view}:${v.tenantTables.join('+')}`)).toEqual([
      'public.customer_list:public.customer',
      'public.customer_rentals:public.customer+public.rental',
      'public.store_revenue:public.payment+public.staff',
    ]);
  });

  it('run as the invoker with --rls (restored by the rollback); the unit names the materialized views every tenant can read', () => {
    const catalog = catalogOf(shop(), views);
    const analysis = analyzeTenancy(catalog, { owner: 'stores' });
    const unit = units(analysis, catalog).find((u) => u.name === 'views_security_invoker') as ScaffoldUnit;
    expect(unit.sql).toContain('ALTER VIEW public.customer_list SET (security_invoker = on);');
    expect(unit.sql).toContain('ALTER VIEW public.customer_rentals SET (security_invoker = on);');
    expect(unit.sql).not.toContain('film_list');
    expect(unit.sql).toMatch(/-- .*public\.store_revenue/);
    expect(unit.rollback).toContain('ALTER VIEW public.customer_list RESET (security_invoker);');
    // Without --rls, nothing about views.
    expect(units(analysis, catalog, { composite: false, rls: false }).some((u) => u.name === 'views_security_invoker')).toBe(false);
  });
});

describe('analyze hints', () => {
  it('never call a table its own primary key a reference, nor text ids that can reference no key', () => {
    const a = analyzeTenancy(catalogOf(shop()), { owner: 'stores' });
    const columns = a.hints.filter((h) => h.column).map((h) => `${h.table}.${h.column}`);
    // payment.id is one column of its composite primary key; stores.id, customer.id... the whole key.
    expect(columns).not.toContain('public.payment.id');
    expect(columns).not.toContain('public.customer.loyalty_card_id');
    expect(columns).not.toContain('public.customer.ap_id');
    const tables = [table('users', ['id', 'user_id', 'oauth_user_id:text']), table('accounts', ['id', 'owner_id:text'])];
    const b = analyzeTenancy(catalogOf(tables), { owner: 'accounts' });
    // users.user_id is no primary key: it still looks like a reference (to users? it names itself: no).
    expect(b.hints.filter((h) => h.column).map((h) => h.column)).not.toContain('oauth_user_id');
  });

  it('still hint an integer column named like a table, and a text one when the table it names has a text key', () => {
    const tables = [
      table('stores', ['id']),
      table('notes', ['id', 'store_id', 'country_id:text']),
      table('countries', ['id:text'], { pk: ['id'] }),
    ];
    const a = analyzeTenancy(catalogOf(tables), { owner: 'stores' });
    const columns = a.hints.filter((h) => h.column).map((h) => h.column);
    expect(columns).toContain('store_id');
    expect(columns).toContain('country_id');
  });

  it('warn about a weak owner: no table reaches it', () => {
    const a = analyzeTenancy(catalogOf(shop()), { owner: 'rental_log' });
    expect(a.hints).toContainEqual(expect.objectContaining({ table: 'public.rental_log', hint: expect.stringContaining('weak owner') }));
    expect(analyzeTenancy(catalogOf(shop()), { owner: 'stores' }).hints.some((h) => h.hint.includes('weak owner'))).toBe(false);
  });

  it('warn about a weak owner: most rows of the tables with other foreign keys conflict', () => {
    const a = analyzeTenancy(catalogOf(shop()), { owner: 'stores' });
    const counted = (n: number): TableAnalysis[] =>
      a.tables.map((t) => ({ ...t, consistency: t.consistency.map((e) => ({ ...e, conflicts: t.table === 'public.rental' ? n : 0 })) }));
    // rental and payment have other foreign keys (100 rows each in this catalog): 120 of 200 conflict.
    expect(ownerHints(a.owner, counted(120))).toEqual([
      expect.objectContaining({ hint: expect.stringContaining('weak owner: 120 of about 200 rows') }),
    ]);
    expect(ownerHints(a.owner, counted(20))).toEqual([]);
  });
});

describe('ties between paths', () => {
  it('are shown as ambiguous, and settled by the candidate with the fewest conflicting rows, then the name', () => {
    const catalog = catalogOf(shop());
    const a = analyzeTenancy(catalog, { owner: 'stores' });
    const rental = find(a, 'rental');
    expect(rental.via[0]?.columns).toEqual(['customer_id']);
    expect(rental.ambiguous?.map((c) => `${c.columns.join()}${c.chosen ? '*' : ''}`)).toEqual(['customer_id*', 'inventory_id', 'staff_id']);
    // Customers rent at other stores: 12 rentals disagree between customer and inventory, 12 between customer and staff.
    const query = { table: 'public.rental', candidates: (rental.ambiguous ?? []).map((c) => c.constraint), sql: '' };
    const counts = candidateConflicts(query, { d0_1: 12, d0_2: 12, d1_2: 0 });
    expect([...counts.values()]).toEqual([24, 12, 12]);
    const prefer = preferredCandidates(new Map([['public.rental', counts]]));
    expect(prefer.get('public.rental')).toBe('rental_inventory_id_fkey');
    const b = analyzeTenancy(catalog, { owner: 'stores' }, { prefer });
    expect(find(b, 'rental').via.map((h) => h.columns.join())).toEqual(['inventory_id', 'store_id']);
    expect(find(b, 'rental').ambiguous?.find((c) => c.chosen)?.columns).toEqual(['inventory_id']);
    // The others become consistency edges.
    expect(find(b, 'rental').consistency.map((e) => e.columns.join())).toEqual(['customer_id', 'staff_id']);
  });
});

describe('--owner over a config written for another owner', () => {
  it("leaves the config's table settings out and says so", () => {
    const notes: string[] = [];
    const model = tenancyConfigFrom(
      { owner: 'accounts', tables: { tasks: { via: ['project_id'] }, countries: 'global' } },
      { owner: 'stores' },
      (n) => notes.push(n),
    );
    expect(model.owner).toBe('stores');
    expect(model.tables).toBeUndefined();
    expect(notes).toEqual([expect.stringContaining('2 table settings')]);
    const same = tenancyConfigFrom({ owner: 'accounts', tables: { countries: 'global' } }, { owner: 'public.accounts' }, (n) =>
      notes.push(n),
    );
    expect(same.tables).toEqual({ countries: 'global' });
    expect(notes).toHaveLength(1);
  });
});
