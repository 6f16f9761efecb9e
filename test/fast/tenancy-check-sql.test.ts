/** The data rules' SQL text and the catalog rules, from hand-made catalogs: no database. */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Access, AccessFunction } from '../../src/tenancy/access.js';
import { catalogFindings, dataQueries, fails, parsersNeeded, selectRules, sortFindings } from '../../src/tenancy/check.js';
import { buildScope } from '../../src/tenancy/check-scope.js';
import { analyzeTenancy } from '../../src/tenancy/graph.js';
import { loadExpressionParser } from '../../src/tenancy/policy-expr.js';
import type { Catalog, CatalogForeignKey, CatalogTable, TenancyConfig } from '../../src/tenancy/types.js';

beforeAll(async () => {
  await loadExpressionParser();
});

function fk(table: string, columns: string[], references: string, referencedColumns: string[]): CatalogForeignKey {
  return {
    name: `${table}_${columns.join('_')}_fkey`,
    table: `public.${table}`,
    columns,
    references: `public.${references}`,
    referencedColumns,
    validated: true,
    notNull: true,
    onDelete: 'no action',
  };
}

function table(name: string, columns: string[], foreignKeys: CatalogForeignKey[], extra: Partial<CatalogTable> = {}): CatalogTable {
  return {
    name: `public.${name}`,
    schema: 'public',
    table: name,
    kind: 'table',
    columns: columns.map((c) => ({ name: c, type: 'integer', notNull: true, hasDefault: c === 'id' })),
    primaryKey: ['id'],
    uniques: [{ name: `${name}_org_id_key`, kind: 'unique', columns: ['organization_id', 'id'] }],
    foreignKeys,
    indexes: [{ name: `${name}_org_id_key`, columns: ['organization_id', 'id'], unique: true, valid: true, partial: false }],
    checks: [],
    rls: { enabled: true, forced: true },
    policies: [
      {
        name: 'isolation',
        command: 'all',
        permissive: true,
        roles: ['public'],
        using: "(organization_id = (current_setting('app.tenant_id'::text))::integer)",
        withCheck: null,
      },
    ],
    estimatedRows: 100,
    owner: 'postgres',
    ...extra,
  };
}

/** accounts (the owner) ← projects ← tasks (assignee → accounts, parent → tasks), all keyed by organization_id. */
function catalog(overrides: Record<string, Partial<CatalogTable>> = {}): Catalog {
  const organizations = {
    ...table('organizations', ['id', 'name'], []),
    uniques: [],
    indexes: [],
    rls: { enabled: false, forced: false },
    policies: [],
  };
  return {
    tables: [
      table('accounts', ['id', 'organization_id'], [fk('accounts', ['organization_id'], 'organizations', ['id'])], overrides['accounts']),
      organizations,
      table(
        'projects',
        ['id', 'organization_id', 'account_id'],
        [
          fk('projects', ['organization_id'], 'organizations', ['id']),
          fk('projects', ['organization_id', 'account_id'], 'accounts', ['organization_id', 'id']),
        ],
        overrides['projects'],
      ),
      table(
        'tasks',
        ['id', 'organization_id', 'project_id', 'assignee_id', 'parent_id'],
        [
          fk('tasks', ['organization_id'], 'organizations', ['id']),
          fk('tasks', ['organization_id', 'project_id'], 'projects', ['organization_id', 'id']),
          fk('tasks', ['assignee_id'], 'accounts', ['id']),
          fk('tasks', ['parent_id'], 'tasks', ['id']),
        ],
        overrides['tasks'],
      ),
    ],
    schemas: ['public'],
    extensions: [],
  };
}

const model: TenancyConfig = { owner: 'accounts', tenants: 'organizations', key: 'organization_id', rls: true };

function check(c: Catalog, config = model, only?: string[]) {
  const analysis = analyzeTenancy(c, config);
  const scope = buildScope(c, analysis);
  const active = selectRules(analysis, only);
  return { scope, active, analysis };
}

describe('the data rules as SQL text', () => {
  it('null-tenant: the rows found once, then counted and the first primary keys shown', () => {
    const { scope, active } = check(catalog(), model, ['null-tenant']);
    const [tasks] = dataQueries(scope, active).filter((q) => q.table === 'public.tasks');
    expect(tasks?.sql).toBe(
      [
        '-- public.tasks: rows without a tenant',
        'WITH violations AS MATERIALIZED (',
        'SELECT t.id',
        '  FROM public.tasks t',
        ' WHERE t.organization_id IS NULL',
        ')',
        'SELECT (SELECT count(*) FROM violations) AS "violations (all)", *',
        '  FROM violations',
        ' ORDER BY id',
        ' LIMIT 5',
      ].join('\n'),
    );
  });

  it('null-tenant, where the model keeps unresolved rows: only NULL keys on rows whose parent along a path of the model has a tenant', () => {
    const { scope, active } = check(catalog(), { ...model, tables: { tasks: { unresolved: 'keep' } } }, ['null-tenant']);
    const queries = dataQueries(scope, active);
    expect(queries.map((q) => q.table)).toEqual(['public.accounts', 'public.projects', 'public.tasks']);
    // The derivation's first hop: the row's assignee has a tenant.
    expect(queries[2]?.sql.split('\n').slice(2, 6)).toEqual([
      'SELECT t.id',
      '  FROM public.tasks t',
      ' WHERE t.organization_id IS NULL',
      '   AND (EXISTS (SELECT 1 FROM public.accounts p WHERE p.id = t.assignee_id AND p.organization_id IS NOT NULL))',
    ]);
    // A composite first hop joins on its columns but the key (NULL on these rows).
    const composite = check(catalog(), { ...model, tables: { tasks: { unresolved: 'keep', via: ['project_id'] } } }, ['null-tenant']);
    expect(dataQueries(composite.scope, composite.active)[2]?.sql).toContain(
      'EXISTS (SELECT 1 FROM public.projects p WHERE p.id = t.project_id AND p.organization_id IS NOT NULL)',
    );
  });

  it('dangling-tenant: an anti-join on the tenants table primary key', () => {
    const { scope, active } = check(catalog(), model, ['dangling-tenant']);
    const [accounts] = dataQueries(scope, active);
    expect(accounts?.sql.split('\n').slice(2, 6)).toEqual([
      'SELECT t.id, t.organization_id',
      '  FROM public.accounts t',
      ' WHERE t.organization_id IS NOT NULL',
      '   AND NOT EXISTS (SELECT 1 FROM public.organizations o WHERE o.id = t.organization_id)',
    ]);
  });

  it('cross-tenant-reference: every foreign key between tenant tables that does not pair the keys, self-references included', () => {
    const { scope, active } = check(catalog(), model, ['cross-tenant-reference']);
    const queries = dataQueries(scope, active);
    expect(queries.map((q) => q.detail)).toEqual([
      'tasks.assignee_id → accounts: the referenced row is of another tenant',
      'tasks.parent_id → tasks: the referenced row is of another tenant',
    ]);
    expect(queries[1]?.sql).toBe(
      [
        '-- tasks.parent_id → tasks (tasks_parent_id_fkey): references into another tenant',
        'WITH violations AS MATERIALIZED (',
        'SELECT c.id, c.parent_id, c.organization_id, p.organization_id AS "referenced organization_id"',
        '  FROM public.tasks c',
        '  JOIN public.tasks p ON p.id = c.parent_id',
        ' WHERE p.organization_id <> c.organization_id',
        ')',
        'SELECT (SELECT count(*) FROM violations) AS "violations (all)", *',
        '  FROM violations',
        ' ORDER BY id',
        ' LIMIT 5',
      ].join('\n'),
    );
  });

  it('cross-tenant-reference: an edge whose conflicts the model keeps is a warning', () => {
    const { scope, active } = check(catalog(), { ...model, tables: { tasks: { conflicts: { parent_id: 'keep' } } } }, [
      'cross-tenant-reference',
    ]);
    expect(dataQueries(scope, active).map((q) => [q.level, q.detail])).toEqual([
      ['error', 'tasks.assignee_id → accounts: the referenced row is of another tenant'],
      ['warning', 'tasks.parent_id → tasks: the referenced row is of another tenant (kept by the model: conflicts keep)'],
    ]);
  });

  it('cross-tenant-reference: a composite foreign key without the key joins on every column', () => {
    const c = catalog();
    const tasks = c.tables.find((t) => t.name === 'public.tasks') as CatalogTable;
    tasks.columns.push({ name: 'account_ref', type: 'integer', notNull: false, hasDefault: false });
    tasks.foreignKeys.push(fk('tasks', ['project_id', 'account_ref'], 'projects', ['id', 'account_id']));
    const { scope, active } = check(c, model, ['cross-tenant-reference']);
    const query = dataQueries(scope, active).find((q) => q.detail.startsWith('tasks.(project_id, account_ref)'));
    expect(query?.sql).toContain('JOIN public.projects p ON p.id = c.project_id AND p.account_id = c.account_ref');
  });

  it('when the owner is the tenants table, its key there is its primary key', () => {
    const c = catalog();
    c.tables = c.tables.filter((t) => t.name !== 'public.organizations');
    for (const t of c.tables) t.foreignKeys = t.foreignKeys.filter((f) => f.references !== 'public.organizations');
    const { scope, active } = check(c, { owner: 'accounts', tenants: 'accounts', key: 'organization_id' }, ['cross-tenant-reference']);
    expect(scope.tables.find((t) => t.name === 'public.accounts')).toMatchObject({ key: 'id', keyIsPrimaryKey: true });
    expect(dataQueries(scope, active).find((q) => q.detail.startsWith('tasks.assignee_id'))?.sql).toContain(
      'WHERE p.id <> c.organization_id',
    );
  });
});

describe('the catalog rules', () => {
  const findings = (c: Catalog, config = model) => {
    const { scope, active } = check(c, config);
    return sortFindings(catalogFindings(scope, active)).map((f) => `${f.level} ${f.rule} ${f.table}: ${f.detail}`);
  };

  it('on this catalog: only the two plain foreign keys', () => {
    expect(findings(catalog())).toEqual([
      'warning foreign-key-without-tenant-key public.tasks: tasks.assignee_id → accounts (tasks_assignee_id_fkey) does not pair organization_id with organization_id',
      'warning foreign-key-without-tenant-key public.tasks: tasks.parent_id → tasks (tasks_parent_id_fkey) does not pair organization_id with organization_id',
    ]);
  });

  it('errors come before warnings; the RLS rules apply only with rls', () => {
    const c = catalog({ projects: { rls: { enabled: false, forced: false }, indexes: [], uniques: [] } });
    expect(findings(c).map((f) => f.split(':')[0])).toEqual([
      'error rls-disabled public.projects',
      'warning tenant-key-unindexed public.projects',
      'warning foreign-key-without-tenant-key public.tasks',
      'warning foreign-key-without-tenant-key public.tasks',
    ]);
    expect(findings(c, { ...model, rls: false }).some((f) => f.includes('rls-'))).toBe(false);
  });

  it("policies are judged per table with that table's key", () => {
    const c = catalog({
      projects: {
        policies: [
          {
            name: 'leaky',
            command: 'select',
            permissive: true,
            roles: ['public'],
            using:
              "(organization_id = (current_setting('app.tenant_id'::text))::integer) OR (current_setting('app.tenant_id'::text, true) IS NULL)",
            withCheck: null,
          },
          { name: 'open', command: 'insert', permissive: true, roles: ['public'], using: null, withCheck: 'true' },
        ],
      },
    });
    expect(findings(c).filter((f) => f.includes('policy'))).toEqual([
      "error policy-ignores-tenant-key public.projects: policy leaky (SELECT): USING: current_setting('app.tenant_id'::text, true) IS NULL admits rows without comparing organization_id with current_setting('app.tenant_id')",
      'error policy-missing-with-check public.projects: policy open (INSERT): WITH CHECK (true) admits any row',
    ]);
  });

  it('an unknown --rule is a usage error naming the rules', () => {
    const analysis = analyzeTenancy(catalog(), model);
    expect(() => selectRules(analysis, ['null-tenants'])).toThrow('--rule null-tenants: no such rule');
  });

  it('warnings fail only with --strict', () => {
    const warning = { rule: 'tenant-key-unindexed', level: 'warning' as const, table: 'public.t', detail: '', rows: null, sample: [] };
    expect(fails([warning], false)).toBe(false);
    expect(fails([warning], true)).toBe(true);
    expect(fails([{ ...warning, level: 'error' }], false)).toBe(true);
  });
});

describe('the parsers the catalog rules need, loaded only then', () => {
  const roles: Access['roles'] = [
    { name: 'postgres', superuser: true, bypassRls: false },
    { name: 'app', superuser: false, bypassRls: false },
  ];
  const definer = (extra: Partial<AccessFunction> = {}): AccessFunction => ({
    name: 'public.organization_name(integer)',
    owner: 'postgres',
    language: 'plpgsql',
    source: 'BEGIN RETURN (SELECT name FROM organizations WHERE id = org); END',
    definition: 'CREATE FUNCTION ...',
    dependsOn: [],
    searchPath: null,
    executors: ['app'],
    ...extra,
  });
  const needed = (c: Catalog, functions: AccessFunction[] = []) => {
    const analysis = analyzeTenancy(c, model);
    const access: Access = { roles, relations: [], functions, settingDefaults: [] };
    return [...parsersNeeded(buildScope(c, analysis, { access, appRole: 'app' }), selectRules(analysis))].sort();
  };
  const noPolicies = { policies: [] };

  it('policies to judge: the expression parser; a PL/pgSQL body the app may execute: the body parser', () => {
    expect(needed(catalog())).toEqual(['expression']);
    expect(needed(catalog(), [definer()])).toEqual(['body', 'expression']);
  });

  it('no policy, no check constraint, no body to read: none', () => {
    const bare = catalog({ accounts: noPolicies, projects: noPolicies, tasks: noPolicies });
    expect(needed(bare)).toEqual([]);
    // A SQL-standard body (pg_depend says what it reads), or one the app may not execute, is not parsed.
    expect(needed(bare, [definer({ dependsOn: ['public.organizations'] }), definer({ executors: ['postgres'] })])).toEqual([]);
  });

  it('a check constraint that may stand for NOT NULL on a nullable key: the expression parser', () => {
    const c = catalog({ accounts: noPolicies, projects: noPolicies, tasks: noPolicies });
    const tasks = c.tables.find((t) => t.name === 'public.tasks') as CatalogTable;
    const key = tasks.columns.find((col) => col.name === 'organization_id');
    if (key) key.notNull = false;
    tasks.checks = [{ name: 'tasks_organization_id_not_null', definition: 'CHECK ((organization_id IS NOT NULL))', validated: true }];
    expect(needed(c)).toEqual(['expression']);
  });
});
