/**
 * The scaffold's SQL text, from hand-built catalogs and analyses: no database. Every unit
 * and rollback goes through the plan's own parser (directives, sections, statements).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlParser, parseSqlUnit } from '../../src/plan/sql-unit.js';
import { scaffoldPlan, type ScaffoldUnit } from '../../src/tenancy/scaffold/index.js';
import type { Catalog, CatalogTable, ConsistencyEdge, Hop, TableAnalysis, TenancyAnalysis } from '../../src/tenancy/types.js';

beforeAll(async () => {
  await loadSqlParser();
});

function table(
  name: string,
  columns: [string, string, boolean?][],
  fks: [string, string, string][] = [],
  pk: string[] | null = ['id'],
): CatalogTable {
  const [schema, bare] = name.split('.') as [string, string];
  return {
    name,
    schema,
    table: bare,
    kind: 'table',
    columns: columns.map(([n, type, notNull]) => ({ name: n, type, notNull: notNull ?? false, hasDefault: false })),
    primaryKey: pk,
    uniques: [],
    foreignKeys: fks.map(([column, references, constraint]) => ({
      name: constraint,
      table: name,
      columns: [column],
      references,
      referencedColumns: ['id'],
      validated: true,
      notNull: columns.find((c) => c[0] === column)?.[2] ?? false,
      onDelete: 'cascade',
    })),
    indexes: [],
    checks: [],
    rls: { enabled: false, forced: false },
    policies: [],
    estimatedRows: 0,
    owner: 'postgres',
  };
}

function hop(from: string, column: string, to: string, nullable = false): Hop {
  return {
    table: from,
    columns: [column],
    references: to,
    referencedColumns: ['id'],
    nullable,
    constraint: `${from.split('.')[1]}_${column}_fkey`,
  };
}

function tenant(name: string, via: Hop[], extra: Partial<TableAnalysis> = {}): TableAnalysis {
  return {
    table: name,
    role: 'tenant',
    via,
    fallbacks: [],
    consistency: [],
    unresolvedPolicy: 'fail',
    referencedBy: [],
    depth: via.length,
    estimatedRows: 0,
    ...extra,
  };
}

function edge(column: string, references: string, policy: ConsistencyEdge['policy']): ConsistencyEdge {
  return {
    columns: [column],
    references,
    referencedColumns: ['id'],
    constraint: `x_${column}_fkey`,
    nullable: true,
    selfReference: false,
    policy,
  };
}

/** accounts (owner) ← projects ← tasks (assignee → users ← accounts); audit_logs.user_id nullable. */
function world(policies: { unresolved?: TableAnalysis['unresolvedPolicy']; assignee?: ConsistencyEdge['policy'] } = {}) {
  const catalog: Catalog = {
    schemas: ['public'],
    extensions: [],
    tables: [
      table('public.accounts', [
        ['id', 'integer', true],
        ['name', 'text'],
      ]),
      table(
        'public.users',
        [
          ['id', 'integer', true],
          ['account_id', 'integer', true],
        ],
        [['account_id', 'public.accounts', 'users_account_id_fkey']],
      ),
      table(
        'public.projects',
        [
          ['id', 'integer', true],
          ['account_id', 'integer', true],
        ],
        [['account_id', 'public.accounts', 'projects_account_id_fkey']],
      ),
      table(
        'public.tasks',
        [
          ['id', 'bigint', true],
          ['project_id', 'integer', true],
          ['assignee_id', 'integer'],
        ],
        [
          ['project_id', 'public.projects', 'tasks_project_id_fkey'],
          ['assignee_id', 'public.users', 'tasks_assignee_id_fkey'],
        ],
      ),
      table(
        'public.audit_logs',
        [
          ['id', 'integer', true],
          ['user_id', 'integer'],
        ],
        [['user_id', 'public.users', 'audit_logs_user_id_fkey']],
      ),
      table('public.countries', [['id', 'integer', true]]),
    ],
  };
  const analysis: TenancyAnalysis = {
    owner: 'public.accounts',
    tenants: 'public.organizations',
    tenantsExists: false,
    ownerIsTenants: false,
    key: 'organization_id',
    setting: 'app.tenant_id',
    rls: false,
    hints: [],
    tables: [
      {
        table: 'public.accounts',
        role: 'owner',
        via: [],
        fallbacks: [],
        consistency: [],
        unresolvedPolicy: 'fail',
        referencedBy: [],
        depth: 0,
        estimatedRows: 0,
      },
      tenant('public.users', [hop('public.users', 'account_id', 'public.accounts')]),
      tenant('public.projects', [hop('public.projects', 'account_id', 'public.accounts')]),
      tenant(
        'public.audit_logs',
        [hop('public.audit_logs', 'user_id', 'public.users', true), hop('public.users', 'account_id', 'public.accounts')],
        { unresolvedPolicy: policies.unresolved ?? 'fail' },
      ),
      tenant(
        'public.tasks',
        [hop('public.tasks', 'project_id', 'public.projects'), hop('public.projects', 'account_id', 'public.accounts')],
        {
          consistency: [edge('assignee_id', 'public.users', policies.assignee ?? 'fail')],
        },
      ),
      {
        table: 'public.countries',
        role: 'global',
        via: [],
        fallbacks: [],
        consistency: [],
        unresolvedPolicy: 'fail',
        referencedBy: [],
        depth: -1,
        estimatedRows: 0,
      },
    ],
  };
  return { catalog, analysis };
}

function parse(u: ScaffoldUnit) {
  const defaults = { lockTimeoutMs: undefined, statementTimeoutMs: undefined, retries: 3 };
  return { up: parseSqlUnit(`${u.name}.sql`, u.sql, defaults), down: parseSqlUnit(`rollbacks/${u.name}.sql`, u.rollback, defaults) };
}

describe('scaffoldPlan', () => {
  it('writes the steps in the contract order, parents first, and every unit and rollback parses', () => {
    const { catalog, analysis } = world({ unresolved: 'keep', assignee: 'detach' });
    const units = scaffoldPlan(analysis, catalog, { composite: true, rls: true });
    const names = units.map((u) => u.name);
    expect(names.slice(0, 3)).toEqual(['create_organizations', 'accounts_organization_id', 'fill_organizations']);
    const steps = units.map((u) => u.step);
    // 1 and 2 interleave (the tenants are filled once the owner has its key and trigger); 3..7 in order after.
    expect(steps.slice(units.findIndex((u) => u.step === 3))).toEqual([...steps.slice(units.findIndex((u) => u.step === 3))].sort());
    // Parents before children: users' key before audit_logs' key, projects' before tasks'.
    expect(names.indexOf('users_organization_id')).toBeLessThan(names.indexOf('audit_logs_organization_id'));
    expect(names.indexOf('backfill_projects_organization_id')).toBeLessThan(names.indexOf('backfill_tasks_organization_id'));
    expect(names.some((n) => n.includes('countries'))).toBe(false);
    for (const u of units) {
      const { up, down } = parse(u);
      expect(up.statements.length, u.name).toBeGreaterThan(0);
      expect(down.statements.length, u.name).toBeGreaterThan(0);
      expect(u.sql.startsWith('-- '), u.name).toBe(true);
      if (/CONCURRENTLY/.test(up.statements.map((s) => s.sql).join())) expect(up.options.transaction, u.name).toBe(false);
      if (/\bALTER TABLE\b/.test(up.statements.map((s) => s.sql).join()) && up.options.transaction) {
        expect(up.options.lockTimeoutMs, u.name).toBe(500);
        expect(up.options.retries, u.name).toBe(10);
      }
    }
  });

  it('backfills in keyset batches, only rows without a key, from the parent', () => {
    const { catalog, analysis } = world();
    const units = scaffoldPlan(analysis, catalog, { composite: false, rls: false });
    const tasks = units.find((u) => u.name === 'backfill_tasks_organization_id') as ScaffoldUnit;
    const { up, down } = parse(tasks);
    expect(up.options.batch).toEqual({ table: 'public.tasks', key: 'id', size: 5000 });
    // The rollback walks the same batches, throttled by the executor as the backfill is.
    expect(down.options.batch).toEqual({ table: 'public.tasks', key: 'id', size: 5000 });
    expect(down.statements.map((st) => st.sql)).toEqual([
      'UPDATE public.tasks AS t\n   SET organization_id = NULL\n WHERE t.id > $1 AND t.id <= $2\n   AND t.organization_id IS NOT NULL',
    ]);
    expect(tasks.sql).toContain('SET organization_id = p.organization_id\n  FROM public.projects AS p');
    expect(tasks.sql).toContain('t.id > $1 AND t.id <= $2');
    expect(tasks.sql).toContain('AND t.organization_id IS NULL');
    expect(up.verifies.map((v) => v.name)).toEqual(["every tasks row has its parent's organization_id"]);
    const fill = units.find((u) => u.name === 'fill_organizations') as ScaffoldUnit;
    expect(parse(fill).up.options.batch).toEqual({ table: 'public.accounts', key: 'id', size: 5000 });
    expect(fill.sql).toContain('ON CONFLICT (legacy_accounts_id)');
  });

  it('fail policies become prechecks of the first unit, listing rows with their count', () => {
    const { catalog, analysis } = world();
    const units = scaffoldPlan(analysis, catalog, { composite: false, rls: false });
    const { up } = parse(units[0] as ScaffoldUnit);
    expect(up.prechecks.map((p) => p.name)).toEqual([
      'public.audit_logs: every row leads to a accounts row (unresolved: fail)',
      "public.tasks: assignee_id stays in the row's tenant (conflicts: fail)",
    ]);
    // The row and the reference, each column once; the runner counts every row found.
    expect(up.prechecks[1]?.sql).toContain('SELECT t.id, t.assignee_id\n');
    // The conflict is found along the paths, before any key exists, set-based (joins, no
    // lookup per row); the accounts table itself is not read: projects.account_id and
    // users.account_id have validated foreign keys, so their values are the owners.
    expect(up.prechecks[1]?.sql).toContain('LEFT JOIN public.projects AS p1 ON p1.id = t.project_id');
    expect(up.prechecks[1]?.sql).toContain('JOIN public.users AS r2 ON r2.id = t.assignee_id');
    expect(up.prechecks[1]?.sql).toContain('WHERE t.id > $1 AND t.id <= $2\n   AND p1.account_id <> r2.account_id');
    // Each walks its table in ranges of its key, one short query per range beside the application.
    expect(up.prechecks.map((p) => p.ranges)).toEqual([
      { table: 'public.audit_logs', key: 'id', size: 50000 },
      { table: 'public.tasks', key: 'id', size: 50000 },
    ]);
    expect(up.prechecks.map((p) => p.sql).join('\n')).not.toContain('(SELECT');
    expect(units.every((u, i) => i === 0 || parse(u).up.prechecks.length === 0)).toBe(true);
    // users and projects reach the owner through NOT NULL validated keys: nothing to check.
    expect(up.prechecks.some((p) => p.name.includes('public.users'))).toBe(false);
  });

  it('an unresolved precheck is a NULL test where a validated foreign key leads to the owner, else an anti-join', () => {
    const { catalog, analysis } = world();
    const logs = analysis.tables.find((t) => t.table === 'public.audit_logs') as TableAnalysis;
    // audit_logs → users → accounts: users.account_id's key is validated, so reaching users is enough.
    const logsCheck = (c: Catalog) =>
      parse(scaffoldPlan(analysis, c, { composite: false, rls: false })[0] as ScaffoldUnit).up.prechecks.find((p) =>
        p.name.startsWith('public.audit_logs'),
      )?.sql;
    const validated = logsCheck(catalog);
    expect(validated).toContain('LEFT JOIN public.users AS p1 ON p1.id = t.user_id');
    expect(validated).toContain('\n   AND p1.account_id IS NULL');
    expect(validated).not.toContain('public.accounts');
    // The same key NOT VALID: rows may point at accounts that are gone, so the owner is joined.
    const users = catalog.tables.find((t) => t.name === 'public.users') as CatalogTable;
    const notValid: Catalog = {
      ...catalog,
      tables: catalog.tables.map((t) =>
        t === users ? { ...users, foreignKeys: users.foreignKeys.map((fk) => ({ ...fk, validated: false })) } : t,
      ),
    };
    const joined = logsCheck(notValid);
    expect(joined).toContain(
      'LEFT JOIN public.users AS p1 ON p1.id = t.user_id\n  LEFT JOIN public.accounts AS p2 ON p2.id = p1.account_id',
    );
    expect(joined).toContain('\n   AND p2.id IS NULL');
    expect(logs.via.map((h) => h.table)).toEqual(['public.audit_logs', 'public.users']);
  });

  it('detach and delete are units of their own that keep what they change; keep leaves the column nullable', () => {
    const { catalog, analysis } = world({ unresolved: 'delete', assignee: 'detach' });
    const units = scaffoldPlan(analysis, catalog, { composite: false, rls: false });
    const detach = units.find((u) => u.name === 'tasks_assignee_id_detach') as ScaffoldUnit;
    expect(detach.sql).toContain('CREATE TABLE tenantify_scaffold.tasks_assignee_id_detached AS');
    expect(detach.rollback).toContain('SET assignee_id = k.assignee_id');
    const del = units.find((u) => u.name === 'audit_logs_delete_unresolved') as ScaffoldUnit;
    expect(del.sql).toContain('CREATE TABLE tenantify_scaffold.audit_logs_unresolved (LIKE public.audit_logs)');
    expect(del.rollback).toContain('INSERT INTO public.audit_logs OVERRIDING SYSTEM VALUE');
    expect(parse(units[0] as ScaffoldUnit).up.prechecks).toEqual([]);
    expect(units.map((u) => u.name)).toContain('audit_logs_organization_id_not_null');

    const kept = scaffoldPlan(world({ unresolved: 'keep', assignee: 'keep' }).analysis, catalog, { composite: false, rls: false });
    expect(kept.map((u) => u.name)).not.toContain('audit_logs_organization_id_not_null');
    expect(kept.map((u) => u.name)).toContain('audit_logs_organization_id_validate');
    expect(kept.find((u) => u.name === 'backfill_audit_logs_organization_id')?.sql).toContain('unresolved: keep');
  });

  it('NOT NULL goes through a CHECK NOT VALID, validated in a later unit, then SET NOT NULL', () => {
    const { catalog, analysis } = world();
    const units = scaffoldPlan(analysis, catalog, { composite: false, rls: false });
    const names = units.map((u) => u.name);
    const i = names.indexOf('users_organization_id_check');
    expect(units[i]?.sql).toContain('CHECK (organization_id IS NOT NULL) NOT VALID');
    expect(names[i + 1]).toBe('users_organization_id_validate');
    expect(units[i + 1]?.sql).toContain('VALIDATE CONSTRAINT users_organization_id_fkey');
    expect(units[i + 1]?.sql).toContain('VALIDATE CONSTRAINT users_organization_id_not_null');
    expect(units[i + 2]?.sql).toContain('ALTER COLUMN organization_id SET NOT NULL');
  });

  it('--composite and --rls', () => {
    const { catalog, analysis } = world({ assignee: 'detach' });
    const units = scaffoldPlan(analysis, catalog, { composite: true, rls: true });
    const unique = units.find((u) => u.name === 'users_organization_id_id_unique') as ScaffoldUnit;
    expect(unique.sql).toContain(
      'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_organization_id_id_key ON public.users (organization_id, id)',
    );
    expect(unique.sql).toContain('UNIQUE USING INDEX users_organization_id_id_key');
    const fks = units.find((u) => u.name === 'tasks_tenant_foreign_keys') as ScaffoldUnit;
    expect(fks.sql).toContain(
      'FOREIGN KEY (organization_id, project_id)\n  REFERENCES public.projects (organization_id, id) ON UPDATE CASCADE\n  NOT VALID',
    );
    expect(fks.sql).toContain('FOREIGN KEY (organization_id, assignee_id)\n  REFERENCES public.users (organization_id, id)\n  NOT VALID');
    const rls = units.find((u) => u.name === 'tasks_row_level_security') as ScaffoldUnit;
    expect(rls.sql).toContain("USING (organization_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint)");
    expect(rls.sql).toContain('FORCE ROW LEVEL SECURITY');
    expect(units.at(-1)?.step).toBe(7);
  });

  it('quotes identifiers only where needed, and an owner that is the tenants table gets no new table', () => {
    const catalog: Catalog = {
      schemas: ['public'],
      extensions: [],
      tables: [
        table('public.organization', [['id', 'text', true]]),
        table(
          'public.team',
          [
            ['id', 'text', true],
            ['organizationId', 'text', true],
          ],
          [['organizationId', 'public.organization', 'team_organizationId_fkey']],
        ),
        table(
          'public.teamMember',
          [
            ['id', 'text', true],
            ['teamId', 'text', true],
          ],
          [['teamId', 'public.team', 'teamMember_teamId_fkey']],
        ),
      ],
    };
    const analysis: TenancyAnalysis = {
      owner: 'public.organization',
      tenants: 'public.organization',
      tenantsExists: true,
      ownerIsTenants: true,
      key: 'organizationId',
      setting: 'app.tenant_id',
      rls: false,
      hints: [],
      tables: [
        {
          table: 'public.organization',
          role: 'owner',
          via: [],
          fallbacks: [],
          consistency: [],
          unresolvedPolicy: 'fail',
          referencedBy: [],
          depth: 0,
          estimatedRows: 0,
        },
        tenant('public.team', [hop('public.team', 'organizationId', 'public.organization')]),
        tenant('public.teamMember', [
          hop('public.teamMember', 'teamId', 'public.team'),
          hop('public.team', 'organizationId', 'public.organization'),
        ]),
      ],
    };
    const units = scaffoldPlan(analysis, catalog, { composite: false, rls: true });
    const names = units.map((u) => u.name);
    expect(names).not.toContain('create_organization');
    // team has the key already; teamMember gets it.
    expect(names).toContain('team_member_organization_id');
    expect(names).not.toContain('team_organization_id');
    const key = units.find((u) => u.name === 'team_member_organization_id') as ScaffoldUnit;
    expect(key.sql).toContain('ALTER TABLE public."teamMember" ADD COLUMN "organizationId" text');
    expect(key.sql).toContain('REFERENCES public.organization (id) NOT VALID');
    expect(key.sql).toContain('(SELECT p."organizationId" FROM public.team AS p WHERE p.id = NEW."teamId")');
    expect(key.sql).toContain('BEFORE INSERT OR UPDATE OF "teamId" ON public."teamMember"');
    const rls = units.find((u) => u.name === 'organization_row_level_security') as ScaffoldUnit;
    expect(rls.sql).toContain("USING (id = NULLIF(current_setting('app.tenant_id', true), '')::text)");
    for (const u of units) parse(u);
  });
});
