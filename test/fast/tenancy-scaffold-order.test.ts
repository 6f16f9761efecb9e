/**
 * The scaffold's unit order (issue 25, items 0 and 11): every table after each parent its
 * key trigger and its backfill read, fallbacks included; a cycle among them refused. Pure:
 * hand-made catalogs and analyses, no database.
 */
import { describe, expect, it } from 'vitest';
import { isTenantifyError } from '../../src/errors.js';
import { scaffoldPlan } from '../../src/tenancy/scaffold/index.js';
import type { Catalog, CatalogTable, Hop, TableAnalysis, TenancyAnalysis } from '../../src/tenancy/types.js';

function table(name: string, fks: [string, string][]): CatalogTable {
  const [schema, bare] = name.split('.') as [string, string];
  return {
    name,
    schema,
    table: bare,
    kind: 'table',
    columns: [['id', true] as const, ...fks.map(([c]) => [c, false] as const)].map(([n, notNull]) => ({
      name: n,
      type: 'integer',
      notNull,
      hasDefault: false,
    })),
    primaryKey: ['id'],
    uniques: [],
    foreignKeys: fks.map(([column, references]) => ({
      name: `${bare}_${column}_fkey`,
      table: name,
      columns: [column],
      references,
      referencedColumns: ['id'],
      validated: true,
      notNull: false,
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

function hop(from: string, column: string, to: string): Hop {
  return {
    table: from,
    columns: [column],
    references: to,
    referencedColumns: ['id'],
    nullable: true,
    constraint: `${from.split('.')[1]}_${column}_fkey`,
  };
}

function tenant(name: string, via: Hop[], fallbacks: Hop[][] = []): TableAnalysis {
  return {
    table: name,
    role: 'tenant',
    via,
    fallbacks,
    consistency: [],
    unresolvedPolicy: 'keep',
    referencedBy: [],
    depth: via.length,
    estimatedRows: 0,
  };
}

function analysisOf(tables: TableAnalysis[]): TenancyAnalysis {
  return {
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
      ...tables,
    ],
  };
}

/**
 * accounts ← projects ← tasks ← comments; attachments reach their tenant through task_id or,
 * failing that, comment_id. attachments and comments are both three hops deep, and
 * attachments comes first by name: depth and name alone backfill attachments before the
 * comments it falls back on.
 */
function attachments() {
  const catalog: Catalog = {
    schemas: ['public'],
    extensions: [],
    tables: [
      table('public.accounts', []),
      table('public.projects', [['account_id', 'public.accounts']]),
      table('public.tasks', [['project_id', 'public.projects']]),
      table('public.comments', [['task_id', 'public.tasks']]),
      table('public.attachments', [
        ['task_id', 'public.tasks'],
        ['comment_id', 'public.comments'],
      ]),
    ],
  };
  const toAccount = hop('public.projects', 'account_id', 'public.accounts');
  const toProject = hop('public.tasks', 'project_id', 'public.projects');
  const analysis = analysisOf([
    tenant('public.projects', [toAccount]),
    tenant('public.tasks', [toProject, toAccount]),
    tenant(
      'public.attachments',
      [hop('public.attachments', 'task_id', 'public.tasks'), toProject, toAccount],
      [
        [
          hop('public.attachments', 'comment_id', 'public.comments'),
          hop('public.comments', 'task_id', 'public.tasks'),
          toProject,
          toAccount,
        ],
      ],
    ),
    tenant('public.comments', [hop('public.comments', 'task_id', 'public.tasks'), toProject, toAccount]),
  ]);
  return { catalog, analysis };
}

describe('scaffold order', () => {
  it('puts a table after every parent it reads, fallbacks included: key column and trigger, and backfill', () => {
    const { catalog, analysis } = attachments();
    const names = scaffoldPlan(analysis, catalog, { composite: false, rls: false }).map((u) => u.name);
    // The trigger on attachments reads comments.organization_id: that column exists first.
    expect(names.indexOf('comments_organization_id')).toBeGreaterThanOrEqual(0);
    expect(names.indexOf('comments_organization_id')).toBeLessThan(names.indexOf('attachments_organization_id'));
    expect(names.indexOf('backfill_comments_organization_id')).toBeLessThan(names.indexOf('backfill_attachments_organization_id'));
    expect(names.indexOf('backfill_tasks_organization_id')).toBeLessThan(names.indexOf('backfill_comments_organization_id'));
  });

  it('the backfill header names every chain; its verify finds rows left without a key along the paths to the owner', () => {
    const { catalog, analysis } = attachments();
    const unit = scaffoldPlan(analysis, catalog, { composite: false, rls: false }).find(
      (u) => u.name === 'backfill_attachments_organization_id',
    );
    expect(unit?.sql).toContain(
      'attachments.task_id → tasks.project_id → projects.account_id → accounts; else attachments.comment_id → comments.task_id → tasks.project_id → projects.account_id → accounts',
    );
    // The owner is reached by joins over the legacy columns (not through parents' keys, which may still be NULL).
    const verify = unit?.sql.slice(unit.sql.indexOf('-- tenantify:verify')) ?? '';
    expect(verify).toContain('t.organization_id IS NULL AND COALESCE(');
    expect(verify).toContain('JOIN public.accounts');
    // It counts every row it finds: the runner counts, the query does not cut.
    expect(verify).not.toContain('LIMIT');
  });

  it('a cycle among the parents read is a usage error naming the tables, before anything is written', () => {
    const catalog: Catalog = {
      schemas: ['public'],
      extensions: [],
      tables: [
        table('public.accounts', []),
        table('public.a', [
          ['account_id', 'public.accounts'],
          ['b_id', 'public.b'],
        ]),
        table('public.b', [
          ['account_id', 'public.accounts'],
          ['a_id', 'public.a'],
        ]),
      ],
    };
    const aToAccount = hop('public.a', 'account_id', 'public.accounts');
    const bToAccount = hop('public.b', 'account_id', 'public.accounts');
    const analysis = analysisOf([
      tenant('public.a', [aToAccount], [[hop('public.a', 'b_id', 'public.b'), bToAccount]]),
      tenant('public.b', [bToAccount], [[hop('public.b', 'a_id', 'public.a'), aToAccount]]),
    ]);
    let error: unknown;
    try {
      scaffoldPlan(analysis, catalog, { composite: false, rls: false });
    } catch (e) {
      error = e;
    }
    expect(isTenantifyError(error) && error.code).toBe('derivation-cycle');
    expect(isTenantifyError(error) && error.exitCode).toBe(2);
    expect(isTenantifyError(error) && error.details).toEqual(['public.a reads public.b', 'public.b reads public.a']);
  });

  it('every header states the longest wait the app can see: 500 ms per try behind a brief lock, retried 10 times', () => {
    const { catalog, analysis } = attachments();
    const units = scaffoldPlan(analysis, catalog, { composite: true, rls: true });
    for (const u of units) {
      for (const text of [u.sql, u.rollback]) {
        const header = text.slice(0, text.indexOf('\n\n', text.indexOf('-- tenantify:')));
        expect(header, u.name).toMatch(/-- Longest wait the app can see: /);
        if (/-- tenantify:lock-timeout/.test(header)) {
          expect(header, u.name).toContain('-- tenantify:lock-timeout 500ms\n-- tenantify:retries 10');
          expect(header.replace(/\n-- /g, ' '), u.name).toMatch(/Longest wait the app can see: (500 ms per try|none)/);
        }
      }
    }
  });
});
