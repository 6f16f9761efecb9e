/**
 * `tenancy scaffold --citus`'s SQL text, from hand-built catalogs and analyses: no database.
 * Every unit and rollback goes through the plan's own parser.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlParser, parseSqlUnit } from '../../src/plan/sql-unit.js';
import { scaffoldPlan, type ScaffoldUnit } from '../../src/tenancy/scaffold/index.js';
import type { Catalog, CatalogForeignKey, CatalogTable, Hop, TableAnalysis, TenancyAnalysis } from '../../src/tenancy/types.js';

beforeAll(async () => {
  await loadSqlParser();
});

type Fk = [columns: string[], references: string, name: string, onDelete?: string, definition?: string];

function table(name: string, columns: [string, string][], fks: Fk[] = [], extra: Partial<CatalogTable> = {}): CatalogTable {
  const [schema, bare] = name.split('.') as [string, string];
  return {
    name,
    schema,
    table: bare,
    kind: 'table',
    columns: columns.map(([n, type]) => ({ name: n, type, notNull: true, hasDefault: false })),
    primaryKey: ['id'],
    uniques: [{ name: `${bare}_pkey`, kind: 'primary', columns: ['id'], definition: 'PRIMARY KEY (id)' }],
    foreignKeys: fks.map(([cols, references, constraint, onDelete, definition]): CatalogForeignKey => ({
      name: constraint,
      table: name,
      columns: cols,
      references,
      referencedColumns: cols.map(() => 'id'),
      validated: true,
      notNull: true,
      onDelete: onDelete ?? 'no action',
      definition:
        definition ??
        `FOREIGN KEY (${cols.join(', ')}) REFERENCES ${references.split('.')[1]}(id)${onDelete ? ` ON DELETE ${onDelete.toUpperCase()}` : ''}`,
    })),
    indexes: [
      {
        name: `${bare}_pkey`,
        columns: ['id'],
        unique: true,
        valid: true,
        partial: false,
        constraint: true,
        definition: `CREATE UNIQUE INDEX ${bare}_pkey ON ${name} USING btree (id)`,
      },
    ],
    checks: [],
    rls: { enabled: false, forced: false },
    policies: [],
    estimatedRows: 0,
    owner: 'postgres',
    ...extra,
  };
}

function hop(from: string, column: string, to: string): Hop {
  return {
    table: from,
    columns: [column],
    references: to,
    referencedColumns: ['id'],
    nullable: false,
    constraint: `${from.split('.')[1]}_${column}_fkey`,
  };
}

function analysis(name: string, role: TableAnalysis['role'], via: Hop[] = [], extra: Partial<TableAnalysis> = {}): TableAnalysis {
  return {
    table: name,
    role,
    via,
    fallbacks: [],
    consistency: [],
    unresolvedPolicy: 'fail',
    referencedBy: [],
    depth: role === 'global' ? -1 : via.length,
    estimatedRows: 0,
    ...extra,
  };
}

/**
 * accounts (owner, → countries ON UPDATE CASCADE) ← projects (parent_id: a self-reference) ←
 * tasks (reviewer_id → users, ON DELETE SET NULL); users.id an identity column with a unique
 * index on lower(email); countries a commented lookup table.
 */
function world(
  options: { reviewer?: 'fail' | 'keep'; usersKeyType?: string; extraTables?: CatalogTable[]; extraAnalyses?: TableAnalysis[] } = {},
) {
  const users = table(
    'public.users',
    [
      ['id', 'bigint'],
      ['account_id', 'integer'],
      ['email', 'text'],
    ],
    [[['account_id'], 'public.accounts', 'users_account_id_fkey', 'cascade']],
  );
  users.columns[0] = { ...users.columns[0]!, identity: 'by default' };
  users.indexes.push({
    name: 'users_email_lower',
    columns: [null],
    unique: true,
    valid: true,
    partial: false,
    constraint: false,
    definition: 'CREATE UNIQUE INDEX users_email_lower ON public.users USING btree (lower(email))',
  });
  if (options.usersKeyType) users.columns.push({ name: 'organization_id', type: options.usersKeyType, notNull: true, hasDefault: false });
  const catalog: Catalog = {
    schemas: ['public'],
    extensions: ['citus'],
    tables: [
      table(
        'public.countries',
        [
          ['id', 'integer'],
          ['name', 'text'],
        ],
        [],
        { comment: "ISO's list" },
      ),
      table(
        'public.accounts',
        [
          ['id', 'integer'],
          ['country_id', 'integer'],
        ],
        [
          [
            ['country_id'],
            'public.countries',
            'accounts_country_id_fkey',
            'no action',
            'FOREIGN KEY (country_id) REFERENCES countries(id) ON UPDATE CASCADE',
          ],
        ],
      ),
      users,
      table(
        'public.projects',
        [
          ['id', 'integer'],
          ['account_id', 'integer'],
          ['parent_id', 'integer'],
        ],
        [
          [['account_id'], 'public.accounts', 'projects_account_id_fkey', 'cascade'],
          [['parent_id'], 'public.projects', 'projects_parent_id_fkey', 'cascade'],
        ],
      ),
      table(
        'public.tasks',
        [
          ['id', 'integer'],
          ['project_id', 'integer'],
          ['reviewer_id', 'bigint'],
        ],
        [
          [['project_id'], 'public.projects', 'tasks_project_id_fkey', 'cascade'],
          [['reviewer_id'], 'public.users', 'tasks_reviewer_id_fkey', 'set null'],
        ],
      ),
      ...(options.extraTables ?? []),
    ],
  };
  const edge = (columns: string[], references: string, constraint: string, selfReference: boolean, policy: 'fail' | 'keep' = 'fail') => ({
    columns,
    references,
    referencedColumns: ['id'],
    constraint,
    nullable: true,
    selfReference,
    policy,
  });
  const tenancy: TenancyAnalysis = {
    owner: 'public.accounts',
    tenants: 'public.organizations',
    tenantsExists: false,
    ownerIsTenants: false,
    key: 'organization_id',
    setting: 'app.tenant_id',
    rls: false,
    hints: [],
    tables: [
      analysis('public.accounts', 'owner'),
      analysis('public.users', 'tenant', [hop('public.users', 'account_id', 'public.accounts')]),
      analysis('public.projects', 'tenant', [hop('public.projects', 'account_id', 'public.accounts')], {
        consistency: [edge(['parent_id'], 'public.projects', 'projects_parent_id_fkey', true)],
      }),
      analysis(
        'public.tasks',
        'tenant',
        [hop('public.tasks', 'project_id', 'public.projects'), hop('public.projects', 'account_id', 'public.accounts')],
        {
          consistency: [edge(['reviewer_id'], 'public.users', 'tasks_reviewer_id_fkey', false, options.reviewer)],
        },
      ),
      analysis('public.countries', 'global', [], { referencedBy: ['public.accounts'] }),
      ...(options.extraAnalyses ?? []),
    ],
  };
  return { catalog, analysis: tenancy };
}

function plan(w = world()): ScaffoldUnit[] {
  return scaffoldPlan(w.analysis, w.catalog, { composite: true, rls: false, citus: true });
}

function parse(u: ScaffoldUnit) {
  const defaults = { lockTimeoutMs: undefined, statementTimeoutMs: undefined, retries: 3 };
  return { up: parseSqlUnit(`${u.name}.sql`, u.sql, defaults), down: parseSqlUnit(`rollbacks/${u.name}.sql`, u.rollback, defaults) };
}

function unit(units: ScaffoldUnit[], name: string): ScaffoldUnit {
  const found = units.find((u) => u.name === name);
  if (!found) throw new Error(`no unit ${name} in ${units.map((u) => u.name).join(', ')}`);
  return found;
}

describe('scaffoldPlan with citus', () => {
  it('comes last, in the order Citus needs: foreign keys off, keys, reference tables, the tenants table, tenant tables parents first, foreign keys back', () => {
    const units = plan();
    const citus = units.filter((u) => u.step === 8).map((u) => u.name);
    expect(citus).toEqual([
      'citus_drop_foreign_keys',
      'citus_organizations_keys',
      'citus_accounts_keys',
      'citus_users_keys',
      'citus_projects_keys',
      'citus_tasks_keys',
      'citus_reference_countries',
      'citus_distribute_organizations',
      'citus_distribute_accounts',
      'citus_distribute_users',
      'citus_distribute_projects',
      'citus_distribute_tasks',
      'citus_foreign_keys',
    ]);
    expect(units.slice(-citus.length).every((u) => u.step === 8)).toBe(true);
    // The Citus units make the keys composite themselves: no step 6 beside them.
    expect(units.some((u) => u.step === 6)).toBe(false);
    for (const u of units.filter((x) => x.step === 8)) {
      const { up, down } = parse(u);
      expect(up.statements.length, u.name).toBeGreaterThan(0);
      expect(down.statements.length, u.name).toBeGreaterThan(0);
      // Citus runs each of them in a transaction block: a unit is done whole or not at all.
      expect(up.options.transaction, u.name).toBe(true);
      expect(down.options.transaction, u.name).toBe(true);
      expect(up.options.snapshot.kind, u.name).toBe('none');
      expect(up.verifies.length, u.name).toBeGreaterThan(0);
    }
  });

  it('distributes the tenants table by its key, the others colocated with it, the lookup table as a reference table; each undone by undistribute_table', () => {
    const units = plan();
    const organizations = parse(unit(units, 'citus_distribute_organizations'));
    expect(organizations.up.statements.map((s) => s.sql)).toEqual(["SELECT create_distributed_table('public.organizations', 'id')"]);
    const tasks = parse(unit(units, 'citus_distribute_tasks'));
    expect(tasks.up.statements.map((s) => s.sql)).toEqual([
      "SELECT create_distributed_table('public.tasks', 'organization_id', colocate_with => 'public.organizations')",
    ]);
    expect(tasks.down.statements.map((s) => s.sql)).toEqual(["SELECT undistribute_table('public.tasks')"]);
    expect(tasks.up.prechecks.map((c) => c.name)).toEqual(['public.tasks has no trigger (Citus distributes no table with triggers)']);
    const verify = tasks.up.verifies[0]?.sql ?? '';
    expect(verify).toContain(
      "FROM citus_tables WHERE table_name = 'public.tasks'::regclass AND citus_table_type = 'distributed' AND distribution_column = 'organization_id'",
    );
    expect(verify).toMatch(
      /FROM pg_dist_partition p JOIN pg_dist_partition t ON t.logicalrelid = 'public.organizations'::regclass[\s\S]*p.colocationid = t.colocationid/,
    );
    const countries = parse(unit(units, 'citus_reference_countries'));
    expect(countries.up.statements.map((s) => s.sql)).toEqual(["SELECT create_reference_table('public.countries')"]);
    expect(countries.up.verifies[0]?.sql).toMatch(/citus_table_type = 'reference'[\s\S]*partmethod = 'n'/);
    // undistribute_table makes the table anew without its comments: the rollback sets them again.
    expect(countries.down.statements.map((s) => s.sql)).toEqual([
      "SELECT undistribute_table('public.countries')",
      "COMMENT ON TABLE public.countries IS 'ISO''s list'",
    ]);
    expect(unit(units, 'citus_distribute_organizations').rollback).toContain(
      "COMMENT ON COLUMN public.organizations.legacy_accounts_id IS 'the public.accounts row this tenant was made from'",
    );
  });

  it('puts the key first in primary and unique keys, by their names, and gives the old ones back', () => {
    const units = plan();
    const tasks = parse(unit(units, 'citus_tasks_keys'));
    expect(tasks.up.statements.map((s) => s.sql)).toEqual([
      'ALTER TABLE public.tasks DROP CONSTRAINT tasks_pkey',
      'ALTER TABLE public.tasks ADD CONSTRAINT tasks_pkey PRIMARY KEY (organization_id, id)',
    ]);
    expect(tasks.down.statements.map((s) => s.sql)).toEqual([
      'ALTER TABLE public.tasks DROP CONSTRAINT tasks_pkey',
      'ALTER TABLE public.tasks ADD CONSTRAINT tasks_pkey PRIMARY KEY (id)',
    ]);
    const users = parse(unit(units, 'citus_users_keys'));
    const up = users.up.statements.map((s) => s.sql);
    expect(up).toContain('CREATE UNIQUE INDEX users_email_lower ON public.users USING btree (organization_id, lower(email))');
    // An identity column becomes a sequence of its own: undistribute_table refuses identity columns.
    expect(up.join('\n')).toContain('ALTER TABLE public.users ALTER COLUMN id DROP IDENTITY;');
    const down = users.down.statements.map((s) => s.sql);
    expect(down).toContain('CREATE UNIQUE INDEX users_email_lower ON public.users USING btree (lower(email))');
    expect(down.join('\n')).toContain('ALTER TABLE public.users ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY;');
    // The rollback undoes the changes newest first: the identity back before the keys.
    expect(down.findIndex((s) => s.includes('IDENTITY'))).toBeLessThan(down.findIndex((s) => s.includes('PRIMARY KEY (id)')));
    // The tenants table the plan creates: its legacy column is unique with the key in front.
    expect(unit(units, 'citus_organizations_keys').sql).toContain(
      'ADD CONSTRAINT organizations_legacy_accounts_id_key UNIQUE (id, legacy_accounts_id)',
    );
    expect(unit(units, 'citus_organizations_keys').rollback).toContain(
      'ADD CONSTRAINT organizations_legacy_accounts_id_key UNIQUE (legacy_accounts_id)',
    );
  });

  it('drops every foreign key and the key triggers first, and adds them back: between tenant tables with the key, the others as they were', () => {
    const units = plan();
    const drop = parse(unit(units, 'citus_drop_foreign_keys'));
    const dropped = drop.up.statements.map((s) => s.sql);
    expect(dropped).toContain('DROP TRIGGER tasks_set_organization_id ON public.tasks');
    expect(dropped).toContain('ALTER TABLE public.tasks DROP CONSTRAINT tasks_reviewer_id_fkey');
    expect(dropped).toContain('ALTER TABLE public.accounts DROP CONSTRAINT accounts_country_id_fkey');
    expect(dropped).toContain('ALTER TABLE public.users DROP CONSTRAINT users_organization_id_fkey');
    const restored = drop.down.statements.map((s) => s.sql);
    expect(restored).toContain(
      'ALTER TABLE public.tasks ADD CONSTRAINT tasks_reviewer_id_fkey FOREIGN KEY (reviewer_id) REFERENCES users(id) ON DELETE SET NULL',
    );
    expect(restored).toContain(
      'ALTER TABLE public.users ADD CONSTRAINT users_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations (id)',
    );
    expect(
      restored.some((s) =>
        s.startsWith('CREATE TRIGGER tasks_set_organization_id\n  BEFORE INSERT OR UPDATE OF project_id ON public.tasks'),
      ),
    ).toBe(true);

    const back = unit(units, 'citus_foreign_keys');
    const added = parse(back).up.statements.map((s) => s.sql);
    // One transaction over one connection per node: a foreign key to a reference table after a parallel change.
    expect(added[0]).toBe("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'");
    expect(added).toContain(
      'ALTER TABLE public.tasks ADD CONSTRAINT tasks_project_id_fkey FOREIGN KEY (organization_id, project_id) REFERENCES public.projects (organization_id, id) ON DELETE CASCADE',
    );
    expect(added).toContain(
      'ALTER TABLE public.projects ADD CONSTRAINT projects_parent_id_fkey FOREIGN KEY (organization_id, parent_id) REFERENCES public.projects (organization_id, id) ON DELETE CASCADE',
    );
    // Citus refuses SET NULL and ON UPDATE CASCADE on a foreign key with the distribution column: the header says so.
    expect(added).toContain(
      'ALTER TABLE public.tasks ADD CONSTRAINT tasks_reviewer_id_fkey FOREIGN KEY (organization_id, reviewer_id) REFERENCES public.users (organization_id, id)',
    );
    expect(back.sql).toContain('tasks.tasks_reviewer_id_fkey: with organization_id; ON DELETE SET NULL becomes NO ACTION');
    // To a reference table, and the key's own foreign key to the tenants table: as they were.
    expect(added).toContain(
      'ALTER TABLE public.accounts ADD CONSTRAINT accounts_country_id_fkey FOREIGN KEY (country_id) REFERENCES countries(id) ON UPDATE CASCADE',
    );
    expect(added).toContain(
      'ALTER TABLE public.tasks ADD CONSTRAINT tasks_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations (id)',
    );
    expect(parse(back).down.statements.map((s) => s.sql)).toContain('ALTER TABLE public.tasks DROP CONSTRAINT tasks_reviewer_id_fkey');
  });

  it('lets the key triggers go: their verify reads a distributed table as done', () => {
    const units = plan();
    expect(unit(units, 'tasks_organization_id').sql).toContain(
      "AND NOT EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = 'public.tasks'::regclass)",
    );
    expect(
      scaffoldPlan(world().analysis, world().catalog, { composite: true, rls: false }).find((u) => u.name === 'tasks_organization_id')?.sql,
    ).not.toContain('pg_dist_partition');
  });

  it('refuses what Citus cannot hold, before writing anything (exit 2)', () => {
    const refused = (w: ReturnType<typeof world>): Error => {
      try {
        plan(w);
      } catch (error) {
        return error as Error;
      }
      throw new Error('not refused');
    };
    const keep = refused(world({ reviewer: 'keep' }));
    expect(keep.message).toBe(
      '--citus cannot place this tenancy: public.tasks.reviewer_id: conflicts: keep allows a reference into another tenant, and a foreign key between distributed tables must include the key',
    );
    expect((keep as Error & { exitCode: number }).exitCode).toBe(2);
    expect(refused(world({ usersKeyType: 'integer' })).message).toContain(
      "public.users.organization_id is integer, the tenants table's key bigint: colocated tables need one key type",
    );
    const ignored = table(
      'public.legacy_exports',
      [
        ['id', 'integer'],
        ['account_id', 'integer'],
      ],
      [[['account_id'], 'public.accounts', 'legacy_exports_account_id_fkey']],
    );
    expect(refused(world({ extraTables: [ignored], extraAnalyses: [analysis('public.legacy_exports', 'ignore')] })).message).toBe(
      '--citus: public.legacy_exports references public.accounts (legacy_exports_account_id_fkey) and stays a plain table: Citus distributes no table a plain table references',
    );
  });
});
