import { describe, expect, it } from 'vitest';
import { countQueries } from '../../src/tenancy/analyze-data.js';
import { analyzeTenancy, singular } from '../../src/tenancy/graph.js';
import type { Catalog, CatalogTable, TableAnalysis, TenancyAnalysis, TenancyConfig } from '../../src/tenancy/types.js';

/**
 * A table from short column specs: `project_id! > projects` is a NOT NULL column with a
 * foreign key to public.projects(id); `id` is the primary key when present; extra
 * composite keys come as `[columns, references, referencedColumns]`.
 */
function table(name: string, specs: string[], composite: [string[], string, string[]][] = []): CatalogTable {
  const [schema, bare] = name.includes('.') ? (name.split('.') as [string, string]) : ['public', name];
  const t: CatalogTable = {
    name: `${schema}.${bare}`,
    schema,
    table: bare,
    kind: 'table',
    columns: [],
    primaryKey: null,
    uniques: [],
    foreignKeys: [],
    indexes: [],
    checks: [],
    rls: { enabled: false, forced: false },
    policies: [],
    estimatedRows: 10,
    owner: 'postgres',
  };
  for (const spec of specs) {
    const m = /^(\w+)(!?)(?:\s*>\s*([\w.]+))?$/.exec(spec.trim());
    if (!m) throw new Error(`bad spec ${spec}`);
    const [, column, bang, ref] = m as unknown as [string, string, string, string | undefined];
    const notNull = bang === '!' || column === 'id';
    t.columns.push({ name: column, type: 'integer', notNull, hasDefault: false });
    if (column === 'id') t.primaryKey = ['id'];
    if (ref) {
      const references = ref.includes('.') ? ref : `public.${ref}`;
      t.foreignKeys.push({
        name: `${bare}_${column}_fkey`,
        table: t.name,
        columns: [column],
        references,
        referencedColumns: ['id'],
        validated: true,
        notNull,
        onDelete: 'no action',
      });
    }
  }
  for (const [columns, ref, referencedColumns] of composite) {
    const references = ref.includes('.') ? ref : `public.${ref}`;
    const notNull = columns.every((c) => t.columns.find((x) => x.name === c)?.notNull);
    t.foreignKeys.push({
      name: `${bare}_${columns.join('_')}_fkey`,
      table: t.name,
      columns,
      references,
      referencedColumns,
      validated: true,
      notNull,
      onDelete: 'no action',
    });
  }
  return t;
}

function catalogOf(...tables: CatalogTable[]): Catalog {
  return { tables, schemas: [...new Set(tables.map((t) => t.schema))].sort(), extensions: [] };
}

const find = (a: TenancyAnalysis, name: string): TableAnalysis => {
  const t = a.tables.find((x) => x.table === (name.includes('.') ? name : `public.${name}`));
  if (!t) throw new Error(`no ${name}`);
  return t;
};
/** A path as `tasks.project_id → projects.account_id → accounts`. */
const path = (hops: { table: string; columns: string[]; references: string }[]): string =>
  hops.length === 0
    ? ''
    : [...hops.map((h) => `${h.table.replace('public.', '')}.${h.columns.join('+')}`), hops.at(-1)?.references.replace('public.', '')].join(
        ' → ',
      );

const roleOf = (a: TenancyAnalysis): Record<string, string> =>
  Object.fromEntries(a.tables.map((t) => [t.table.replace('public.', ''), t.role]));

describe('analyzeTenancy: names and defaults', () => {
  const cat = catalogOf(table('users', ['id']), table('projects', ['id', 'user_id! > users']), table('billing.users', ['id']));

  it('resolves bare names, preferring public, and fills the defaults', () => {
    const a = analyzeTenancy(cat, { owner: 'users' });
    expect(a.owner).toBe('public.users');
    expect(a.tenants).toBe('public.organizations');
    expect(a.tenantsExists).toBe(false);
    expect(a.ownerIsTenants).toBe(false);
    expect(a.key).toBe('organization_id');
    expect(a.setting).toBe('app.tenant_id');
    expect(a.rls).toBe(false);
  });

  it('derives the key from the tenants table name', () => {
    expect(analyzeTenancy(cat, { owner: 'users', tenants: 'companies' }).key).toBe('company_id');
    expect(analyzeTenancy(cat, { owner: 'users', tenants: 'organization' }).key).toBe('organization_id');
    expect(analyzeTenancy(cat, { owner: 'users', key: 'tenant_id' }).key).toBe('tenant_id');
    expect([singular('organizations'), singular('companies'), singular('addresses'), singular('status'), singular('organization')]).toEqual(
      ['organization', 'company', 'address', 'status', 'organization'],
    );
  });

  it('the owner as tenants: ownerIsTenants, and the owner takes no path', () => {
    const a = analyzeTenancy(cat, { owner: 'users', tenants: 'users' });
    expect(a.ownerIsTenants).toBe(true);
    expect(a.tenantsExists).toBe(true);
    expect(a.key).toBe('user_id');
    expect(find(a, 'projects').role).toBe('tenant');
  });

  it('refuses an unknown owner, naming the key path', () => {
    expect(() => analyzeTenancy(cat, { owner: 'acounts' })).toThrow(/tenancy\.owner: no table named "acounts"/);
  });

  it('refuses an ambiguous bare name outside public', () => {
    const two = catalogOf(table('a.users', ['id']), table('b.users', ['id']));
    expect(() => analyzeTenancy(two, { owner: 'users' })).toThrow(/tenancy\.owner: "users" is ambiguous: a\.users, b\.users/);
    expect(analyzeTenancy(two, { owner: 'b.users' }).owner).toBe('b.users');
  });
});

describe('analyzeTenancy: derivation paths', () => {
  it('prefers an all NOT NULL path over a shorter nullable one', () => {
    const a = analyzeTenancy(
      catalogOf(
        table('accounts', ['id']),
        table('projects', ['id', 'account_id! > accounts']),
        table('tasks', ['id', 'account_id > accounts', 'project_id! > projects']),
      ),
      { owner: 'accounts' },
    );
    const tasks = find(a, 'tasks');
    expect(path(tasks.via)).toBe('tasks.project_id → projects.account_id → accounts');
    expect(tasks.fallbacks).toEqual([]);
    expect(tasks.depth).toBe(2);
    // The nullable direct key is a consistency edge: the row must agree with its project.
    expect(tasks.consistency.map((e) => e.columns[0])).toEqual(['account_id']);
  });

  it('takes the shortest path, ties broken by the first hop column name', () => {
    const a = analyzeTenancy(
      catalogOf(
        table('accounts', ['id']),
        table('boards', ['id', 'account_id! > accounts']),
        table('projects', ['id', 'account_id! > accounts']),
        table('tasks', ['id', 'project_id! > projects', 'board_id! > boards']),
      ),
      { owner: 'accounts' },
    );
    expect(path(find(a, 'tasks').via)).toBe('tasks.board_id → boards.account_id → accounts');
    expect(find(a, 'tasks').consistency.map((e) => e.columns[0])).toEqual(['project_id']);
  });

  it('when every path has a nullable hop, the others follow as fallbacks, shortest first', () => {
    const a = analyzeTenancy(
      catalogOf(
        table('accounts', ['id']),
        table('projects', ['id', 'account_id! > accounts']),
        table('sprints', ['id', 'project_id! > projects']),
        table('tasks', ['id', 'project_id > projects', 'sprint_id > sprints', 'owner_id > accounts']),
      ),
      { owner: 'accounts' },
    );
    const tasks = find(a, 'tasks');
    expect(path(tasks.via)).toBe('tasks.owner_id → accounts');
    expect(tasks.fallbacks.map(path)).toEqual([
      'tasks.project_id → projects.account_id → accounts',
      'tasks.sprint_id → sprints.project_id → projects.account_id → accounts',
    ]);
    expect(tasks.consistency.map((e) => e.columns[0])).toEqual(['project_id', 'sprint_id']);
  });

  it('keeps a fallback that can resolve what the path leaves NULL, drops one that cannot', () => {
    const a = analyzeTenancy(
      catalogOf(
        table('accounts', ['id']),
        table('teams', ['id', 'account_id! > accounts']),
        table('projects', ['id', 'account_id > accounts', 'team_id! > teams']),
        table('boards', ['id', 'account_id! > accounts', 'team_id! > teams']),
        table('tasks', ['id', 'project_id > projects']),
        table('cards', ['id', 'board_id > boards']),
      ),
      { owner: 'accounts' },
    );
    expect(path(find(a, 'projects').via)).toBe('projects.team_id → teams.account_id → accounts');
    // tasks: projects.account_id may be NULL where projects.team_id resolves.
    const tasks = find(a, 'tasks');
    expect(path(tasks.via)).toBe('tasks.project_id → projects.account_id → accounts');
    expect(tasks.fallbacks.map(path)).toEqual(['tasks.project_id → projects.team_id → teams.account_id → accounts']);
    // cards: the only nullable hop is board_id; a path through it again is NULL whenever the first is.
    expect(path(find(a, 'cards').via)).toBe('cards.board_id → boards.account_id → accounts');
    expect(find(a, 'cards').fallbacks).toEqual([]);
  });

  it('among fallbacks as short, the one with fewer nullable hops comes first and makes the other useless', () => {
    const a = analyzeTenancy(
      catalogOf(
        table('accounts', ['id']),
        table('users', ['id', 'account_id! > accounts']),
        table('projects', ['id', 'account_id! > accounts']),
        table('tasks', ['id', 'assignee_id > users', 'project_id! > projects']),
        table('comments', ['id', 'author_id > users', 'task_id > tasks']),
      ),
      { owner: 'accounts' },
    );
    const comments = find(a, 'comments');
    expect(path(comments.via)).toBe('comments.author_id → users.account_id → accounts');
    // task_id → assignee_id → users sorts before task_id → project_id by name, but has two
    // nullable hops; the project path has one, goes first, and resolves whatever the other could.
    expect(comments.fallbacks.map(path)).toEqual(['comments.task_id → tasks.project_id → projects.account_id → accounts']);
  });

  it('self-references never derive the key, and are consistency edges', () => {
    const a = analyzeTenancy(
      catalogOf(
        table('accounts', ['id']),
        table('categories', ['id', 'parent_id > categories']),
        table('comments', ['id', 'parent_id! > comments', 'account_id! > accounts']),
      ),
      { owner: 'accounts' },
    );
    expect(find(a, 'categories').role).toBe('global');
    const comments = find(a, 'comments');
    expect(path(comments.via)).toBe('comments.account_id → accounts');
    expect(comments.consistency).toMatchObject([
      { columns: ['parent_id'], references: 'public.comments', selfReference: true, nullable: false, policy: 'fail' },
    ]);
  });

  it('walks cycles without looping', () => {
    const a = analyzeTenancy(
      catalogOf(
        table('accounts', ['id']),
        table('a', ['id', 'b_id > b', 'account_id > accounts']),
        table('b', ['id', 'c_id! > c']),
        table('c', ['id', 'a_id! > a']),
      ),
      { owner: 'accounts' },
    );
    expect(path(find(a, 'a').via)).toBe('a.account_id → accounts');
    expect(path(find(a, 'b').via)).toBe('b.c_id → c.a_id → a.account_id → accounts');
    expect(find(a, 'c').depth).toBe(2);
    expect(a.tables.map((t) => t.table.replace('public.', ''))).toEqual(['accounts', 'a', 'c', 'b']);
  });

  it('follows composite foreign keys as one hop', () => {
    const a = analyzeTenancy(
      catalogOf(
        table('accounts', ['id']),
        table('projects', ['id', 'account_id! > accounts']),
        table('tasks', ['id', 'account_id!', 'project_id!'], [[['project_id', 'account_id'], 'projects', ['id', 'account_id']]]),
      ),
      { owner: 'accounts' },
    );
    const tasks = find(a, 'tasks');
    expect(tasks.via).toMatchObject([
      { columns: ['project_id', 'account_id'], references: 'public.projects', referencedColumns: ['id', 'account_id'], nullable: false },
      { table: 'public.projects' },
    ]);
    expect(tasks.consistency).toEqual([]);
    // Columns of a composite foreign key are references already: no hint.
    expect(a.hints.filter((h) => h.table === 'public.tasks')).toEqual([]);
  });

  it('does not pass through a global table: a table reached only that way is global', () => {
    const a = analyzeTenancy(
      catalogOf(
        table('accounts', ['id']),
        table('plans', ['id', 'account_id > accounts']),
        table('plan_features', ['id', 'plan_id! > plans']),
        table('countries', ['id']),
        table('addresses', ['id', 'country_id! > countries', 'account_id! > accounts']),
      ),
      { owner: 'accounts', tables: { plans: 'global' } },
    );
    expect(roleOf(a)).toEqual({ accounts: 'owner', addresses: 'tenant', countries: 'global', plan_features: 'global', plans: 'global' });
    expect(find(a, 'countries').referencedBy).toEqual(['public.addresses']);
    // plans references the owner though forced global: a hint says so.
    expect(a.hints).toContainEqual(
      expect.objectContaining({
        table: 'public.plans',
        column: 'account_id',
        hint: expect.stringContaining('global, yet references owner table public.accounts'),
      }),
    );
  });

  it('does not pass through the existing tenants table, which takes the global role', () => {
    const a = analyzeTenancy(
      catalogOf(
        table('users', ['id']),
        table('organizations', ['id', 'creator_id! > users']),
        table('memberships', ['id', 'organization_id! > organizations', 'user_id! > users']),
      ),
      { owner: 'users' },
    );
    expect(a.tenantsExists).toBe(true);
    expect(find(a, 'organizations').role).toBe('global');
    expect(path(find(a, 'memberships').via)).toBe('memberships.user_id → users');
    expect(a.hints.filter((h) => h.table === 'public.organizations')).toEqual([]);
  });

  it('ignore and global from the model override the graph; ignored tables come last', () => {
    const a = analyzeTenancy(
      catalogOf(table('accounts', ['id']), table('exports', ['id', 'account_id! > accounts']), table('zones', ['id'])),
      { owner: 'accounts', tables: { exports: 'ignore' } },
    );
    expect(a.tables.map((t) => `${t.table}:${t.role}`)).toEqual(['public.accounts:owner', 'public.zones:global', 'public.exports:ignore']);
  });

  it('via overrides the path with first-hop columns in order', () => {
    const a = analyzeTenancy(
      catalogOf(
        table('accounts', ['id']),
        table('hosts', ['id', 'account_id! > accounts']),
        table('audit_logs', ['id', 'user_id > accounts', 'host_id > hosts', 'account_id > accounts']),
      ),
      {
        owner: 'accounts',
        tables: { audit_logs: { via: ['host_id', 'user_id'], unresolved: 'delete', conflicts: { account_id: 'detach' } } },
      },
    );
    const logs = find(a, 'audit_logs');
    expect(path(logs.via)).toBe('audit_logs.host_id → hosts.account_id → accounts');
    expect(logs.fallbacks.map(path)).toEqual(['audit_logs.user_id → accounts']);
    expect(logs.unresolvedPolicy).toBe('delete');
    expect(logs.consistency.map((e) => `${e.columns[0]}:${e.policy}`)).toEqual(['account_id:detach', 'user_id:fail']);
  });

  it('the owner keeps its references to tenant tables as consistency edges', () => {
    const a = analyzeTenancy(
      catalogOf(table('accounts', ['id', 'main_project_id > projects']), table('projects', ['id', 'account_id! > accounts'])),
      { owner: 'accounts' },
    );
    expect(find(a, 'accounts').consistency.map((e) => e.columns[0])).toEqual(['main_project_id']);
    expect(find(a, 'accounts').via).toEqual([]);
  });
});

describe('analyzeTenancy: hints', () => {
  it('names columns that look like references without a foreign key, and tables without a primary key', () => {
    const a = analyzeTenancy(
      catalogOf(
        table('users', ['id']),
        table('companies', ['id']),
        table('activity_log', ['user_id!', 'actor_id', 'entity_id', 'companyId', 'created_by_user_id']),
      ),
      { owner: 'users' },
    );
    const hints = Object.fromEntries(a.hints.filter((h) => h.column).map((h) => [h.column, h.hint]));
    expect(hints.user_id).toContain('public.users');
    expect(hints.companyId).toContain('public.companies');
    expect(hints.created_by_user_id).toContain('public.users');
    expect(hints.actor_id).toContain('no table is named like it');
    expect(hints.entity_id).toContain('no table is named like it');
    expect(a.hints).toContainEqual(
      expect.objectContaining({ table: 'public.activity_log', hint: expect.stringContaining('no primary key') }),
    );
  });
});

describe('analyzeTenancy: the model checked against the catalog', () => {
  const cat = catalogOf(
    table('accounts', ['id']),
    table('users', ['id', 'account_id! > accounts']),
    table('tasks', ['id', 'account_id! > accounts', 'assignee_id > users', 'reviewer_id! > users', 'note_id']),
    table('countries', ['id']),
  );
  const run = (config: Partial<TenancyConfig>) => () => analyzeTenancy(cat, { owner: 'accounts', ...config });

  it('accepts a model that fits', () => {
    const a = analyzeTenancy(cat, {
      owner: 'accounts',
      tables: { tasks: { conflicts: { assignee_id: 'detach', reviewer_id: 'delete' } }, countries: 'global' },
    });
    expect(find(a, 'tasks').consistency.map((e) => e.policy)).toEqual(['detach', 'delete']);
  });

  it('names an edge made composite (scaffold --citus) by its columns without the key', () => {
    const placed = catalogOf(
      table('accounts', ['id']),
      table('users', ['id', 'organization_id!', 'account_id! > accounts']),
      table(
        'tasks',
        ['id', 'organization_id!', 'account_id! > accounts', 'assignee_id'],
        [[['organization_id', 'assignee_id'], 'users', ['organization_id', 'id']]],
      ),
    );
    const a = analyzeTenancy(placed, { owner: 'accounts', tables: { tasks: { conflicts: { assignee_id: 'detach' } } } });
    expect(find(a, 'tasks').consistency.map((e) => `${e.columns.join(',')}: ${e.policy}`)).toEqual(['organization_id,assignee_id: detach']);
  });

  it('refuses an unknown table', () => {
    expect(run({ tables: { taks: {} } })).toThrow(/tenancy\.tables\.taks: no table named "taks"/);
  });

  it('refuses via naming a column that is no foreign key', () => {
    expect(run({ tables: { tasks: { via: ['note_id'] } } })).toThrow(
      /tenancy\.tables\.tasks\.via\[0\]: "note_id" is no foreign key of public\.tasks/,
    );
  });

  it('refuses via through a table that reaches no owner', () => {
    expect(run({ tables: { users: 'global', tasks: { via: ['assignee_id'] } } })).toThrow(
      /tenancy\.tables\.tasks\.via\[0\]: "assignee_id" references public\.users, which reaches no owner/,
    );
  });

  it('refuses detach on a NOT NULL column', () => {
    expect(run({ tables: { tasks: { conflicts: { reviewer_id: 'detach' } } } })).toThrow(
      /tenancy\.tables\.tasks\.conflicts\.reviewer_id: "detach" sets reviewer_id to NULL, but public\.tasks\.reviewer_id is NOT NULL/,
    );
  });

  it('refuses a conflicts key that is no consistency edge', () => {
    expect(run({ tables: { tasks: { conflicts: { account_id: 'keep' } } } })).toThrow(
      /tenancy\.tables\.tasks\.conflicts\.account_id: "account_id" is no consistency edge/,
    );
    expect(run({ tables: { countries: { conflicts: { id: 'keep' } } } })).toThrow(/tenancy\.tables\.countries\.conflicts\.id/);
  });

  it('refuses the owner marked global, and one table configured twice', () => {
    expect(run({ tables: { accounts: 'global' } })).toThrow(/tenancy\.tables\.accounts: the owner cannot be "global"/);
    expect(run({ tables: { accounts: { via: ['id'] } } })).toThrow(/tenancy\.tables\.accounts\.via: the owner takes no path/);
    expect(run({ tables: { tasks: {}, 'public.tasks': {} } })).toThrow(
      /tenancy\.tables\.public\.tasks: public\.tasks is already configured at tenancy\.tables\.tasks/,
    );
  });

  it('refuses unresolved on a table that is no tenant table', () => {
    expect(run({ tables: { countries: { unresolved: 'delete' } } })).toThrow(/tenancy\.tables\.countries\.unresolved/);
  });
});

describe('analyzeTenancy: scale', () => {
  it('places 600 tables whose every path has a nullable hop (bounded path search)', () => {
    const tables = [table('accounts', ['id'])];
    for (let i = 0; i < 600; i++) {
      const refs = [
        i > 0 ? `p_id > t${Math.floor(i / 2)}` : 'account_id! > accounts',
        i > 2 ? `q_id > t${i - 3}` : 'x_id',
        `account_id > accounts`,
      ];
      tables.push(table(`t${i}`, ['id', ...refs.filter((r, k) => k < 2 || i % 3 === 0)]));
    }
    const a = analyzeTenancy(catalogOf(...tables), { owner: 'accounts' });
    expect(a.tables.filter((t) => t.role === 'tenant')).toHaveLength(600);
  });
});

describe('countQueries: the SQL of the counts', () => {
  const cat = catalogOf(
    table('accounts', ['id']),
    table('projects', ['id', 'account_id! > accounts']),
    table('tasks', ['id', 'project_id! > projects', 'assignee_id > users']),
    table('users', ['id', 'account_id! > accounts']),
    table('comments', ['id', 'user_id > users', 'task_id > tasks']),
  );
  const analysis = analyzeTenancy(cat, { owner: 'accounts' });
  const queries = countQueries(analysis, cat);
  const sqlOf = (kind: string, name: string) => queries.find((q) => q.kind === kind && q.table === `public.${name}`)?.sql;

  it('asks nothing the constraints prove: a path of NOT NULL validated keys has no unresolved row', () => {
    expect(queries.filter((q) => q.kind === 'unresolved').map((q) => q.table)).toEqual(['public.comments']);
  });

  it('joins along the path, takes the key from the last validated hop, and COALESCEs the fallbacks', () => {
    expect(sqlOf('unresolved', 'comments')).toBe(
      [
        'SELECT count(*) AS n FROM public.comments t',
        '  LEFT JOIN public.users t_1 ON t_1.id = t.user_id',
        '  LEFT JOIN public.tasks t_b1 ON t_b1.id = t.task_id',
        '  LEFT JOIN public.projects t_b2 ON t_b2.id = t_b1.project_id',
        ' WHERE coalesce(t_1.account_id, t_b2.account_id) IS NULL',
      ].join('\n'),
    );
  });

  it('counts a conflict where both sides resolve to different owners', () => {
    expect(sqlOf('conflicts', 'tasks')).toBe(
      [
        'SELECT count(*) AS n FROM public.tasks t',
        '  JOIN public.projects t_1 ON t_1.id = t.project_id',
        '  JOIN public.users r ON r.id = t.assignee_id',
        ' WHERE t_1.account_id IS NOT NULL AND r.account_id IS NOT NULL AND t_1.account_id <> r.account_id',
      ].join('\n'),
    );
  });

  it('joins the owner when the last hop is not validated (a dangling key is unresolved)', () => {
    const loose = catalogOf(table('accounts', ['id']), table('notes', ['id', 'account_id! > accounts']));
    (loose.tables[1] as CatalogTable).foreignKeys[0]!.validated = false;
    const [q] = countQueries(analyzeTenancy(loose, { owner: 'accounts' }), loose);
    expect(q?.sql).toBe(
      ['SELECT count(*) AS n FROM public.notes t', '  JOIN public.accounts t_1 ON t_1.id = t.account_id', ' WHERE t_1.id IS NULL']
        .join('\n')
        .replace('  JOIN', '  LEFT JOIN'),
    );
  });
});
