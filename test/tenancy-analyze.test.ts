import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { analyze } from '../src/app/tenancy.js';
import { loadConfig } from '../src/plan/config.js';
import { readCatalog } from '../src/tenancy/catalog.js';
import { analyzeTableText, pathText } from '../src/ui/tenancy-view.js';
import type { TableAnalysis, TenancyAnalysis } from '../src/tenancy/types.js';
import { runCli } from './support/cli.js';
import { contentFingerprint, dropAfterAll, fixtureTemplate, freshDatabase, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

async function withClient<T>(url: string, body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

describe('readCatalog', () => {
  const keep = dropAfterAll();

  it('reads tables, keys, foreign keys, indexes, checks, policies and partitions in one pass', async () => {
    const db = keep(await freshDatabase('cat'));
    await query(
      db.url,
      `CREATE SCHEMA billing;
       CREATE SCHEMA tenantify;
       CREATE TABLE tenantify.ledger (id int);
       CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL DEFAULT '', UNIQUE (name));
       CREATE TABLE projects (id bigint, account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE, PRIMARY KEY (id), UNIQUE (account_id, id));
       CREATE TABLE tasks (id bigint PRIMARY KEY, account_id bigint, project_id bigint,
                           CONSTRAINT tasks_project FOREIGN KEY (project_id, account_id) REFERENCES projects (id, account_id) ON DELETE SET NULL);
       ALTER TABLE tasks ADD CONSTRAINT tasks_account_set CHECK (account_id IS NOT NULL) NOT VALID;
       ALTER TABLE tasks ADD CONSTRAINT tasks_account FOREIGN KEY (account_id) REFERENCES accounts NOT VALID;
       CREATE INDEX tasks_lower ON tasks (project_id, lower(account_id::text)) WHERE id > 0;
       ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
       ALTER TABLE tasks FORCE ROW LEVEL SECURITY;
       CREATE POLICY tasks_tenant ON tasks FOR SELECT USING (account_id = current_setting('app.tenant_id')::bigint);
       CREATE TABLE events (id bigint NOT NULL, account_id bigint NOT NULL REFERENCES accounts, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
       CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
       CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
       CREATE TABLE event_notes (id int PRIMARY KEY, event_id bigint, event_at date, FOREIGN KEY (event_id, event_at) REFERENCES events);
       INSERT INTO accounts VALUES (1, 'a');
       INSERT INTO events SELECT g, 1, date '2024-06-01' + (g % 400) FROM generate_series(1, 1000) g;
       ANALYZE;
       CREATE TABLE billing.invoices (id int PRIMARY KEY, account_id bigint REFERENCES public.accounts);`,
    );
    const catalog = await withClient(db.url, (c) => readCatalog(c, { excludeSchemas: ['tenantify'] }));
    expect(catalog.schemas).toEqual(['billing', 'public']);
    expect(catalog.tables.map((t) => `${t.name}:${t.kind}`)).toEqual([
      'billing.invoices:table',
      'public.accounts:table',
      'public.event_notes:table',
      'public.events:partitioned',
      'public.projects:table',
      'public.tasks:table',
    ]);
    const t = (name: string) => catalog.tables.find((x) => x.name === name)!;
    expect(t('public.accounts').columns).toEqual([
      { name: 'id', type: 'bigint', notNull: true, hasDefault: false },
      { name: 'name', type: 'text', notNull: true, hasDefault: true },
    ]);
    expect(t('public.accounts').uniques.map((u) => `${u.kind}:${u.columns.join(',')}`)).toEqual(['primary:id', 'unique:name']);
    expect(t('public.projects').foreignKeys).toEqual([
      { name: 'projects_account_id_fkey', table: 'public.projects', columns: ['account_id'], references: 'public.accounts', referencedColumns: ['id'], validated: true, notNull: true, onDelete: 'cascade' },
    ]);
    expect(t('public.tasks').foreignKeys.map((f) => ({ name: f.name, columns: f.columns, referencedColumns: f.referencedColumns, validated: f.validated, notNull: f.notNull, onDelete: f.onDelete }))).toEqual([
      { name: 'tasks_account', columns: ['account_id'], referencedColumns: ['id'], validated: false, notNull: false, onDelete: 'no action' },
      { name: 'tasks_project', columns: ['project_id', 'account_id'], referencedColumns: ['id', 'account_id'], validated: true, notNull: false, onDelete: 'set null' },
    ]);
    expect(t('public.tasks').checks).toEqual([{ name: 'tasks_account_set', definition: 'CHECK ((account_id IS NOT NULL)) NOT VALID', validated: false }]);
    expect(t('public.tasks').indexes).toEqual([
      { name: 'tasks_lower', columns: ['project_id', null], unique: false, valid: true, partial: true },
      { name: 'tasks_pkey', columns: ['id'], unique: true, valid: true, partial: false },
    ]);
    expect(t('public.tasks').rls).toEqual({ enabled: true, forced: true });
    expect(t('public.tasks').policies).toEqual([
      { name: 'tasks_tenant', command: 'select', permissive: true, roles: ['public'], using: "(account_id = (current_setting('app.tenant_id'::text))::bigint)", withCheck: null },
    ]);
    // A partitioned table is one table: its rows are its partitions', its keys its own.
    expect(t('public.events').estimatedRows).toBe(1000);
    expect(t('public.events').primaryKey).toEqual(['id', 'at']);
    expect(t('public.events').foreignKeys.map((f) => f.references)).toEqual(['public.accounts']);
    // A foreign key to a partitioned table is one foreign key (not one per partition).
    expect(t('public.event_notes').foreignKeys.map((f) => `${f.columns.join(',')}>${f.references}`)).toEqual(['event_id,event_at>public.events']);
    expect(t('billing.invoices').foreignKeys[0]?.references).toBe('public.accounts');
    expect(t('public.accounts').owner).toBe((await query<{ u: string }>(db.url, 'SELECT current_user AS u'))[0]?.u);
    expect(catalog.extensions).toContain('plpgsql');

    const only = await withClient(db.url, (c) => readCatalog(c, { schemas: ['billing'] }));
    expect(only.tables.map((x) => x.name)).toEqual(['billing.invoices']);
    // A reference out of the schemas read still names its columns.
    expect(only.tables[0]?.foreignKeys.map((f) => `${f.columns.join(',')}>${f.references}(${f.referencedColumns.join(',')})`)).toEqual(['account_id>public.accounts(id)']);
    await expect(withClient(db.url, (c) => readCatalog(c, { schemas: ['nope'] }))).rejects.toThrow(/no schema named nope/);
  });
});

/**
 * A legacy schema with every case the contract names. Each `bad_*` count below is the
 * number of rows built to be unresolved or in conflict, so the assertions follow the data.
 */
const bad = { commentsOrphan: 3, commentsByTask: 4, assignee: 5, parent: 2, tagProject: 0, dangling: 6, invoiceLines: 1 };
const schema = `
  CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL);
  CREATE TABLE users (id int PRIMARY KEY, account_id int NOT NULL REFERENCES accounts);
  CREATE TABLE projects (id int PRIMARY KEY, account_id int NOT NULL REFERENCES accounts, UNIQUE (id, account_id));
  CREATE TABLE tasks (id int PRIMARY KEY, project_id int NOT NULL REFERENCES projects, assignee_id int REFERENCES users,
                      parent_id int REFERENCES tasks, UNIQUE (project_id, id));
  -- Every path has a nullable hop: user_id first (shorter), task_id as the fallback.
  CREATE TABLE comments (id int PRIMARY KEY, user_id int REFERENCES users, task_id int REFERENCES tasks);
  -- A composite foreign key.
  CREATE TABLE task_tags (project_id int NOT NULL, task_id int NOT NULL, tag text NOT NULL, PRIMARY KEY (task_id, tag),
                          FOREIGN KEY (project_id, task_id) REFERENCES tasks (project_id, id));
  -- No primary key, and a column that looks like a reference.
  CREATE TABLE activity_log (account_id int NOT NULL REFERENCES accounts, actor_id int, at timestamptz NOT NULL DEFAULT now());
  -- Partitioned.
  CREATE TABLE events (id int NOT NULL, account_id int NOT NULL REFERENCES accounts, day date NOT NULL, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
  CREATE TABLE events_a PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
  CREATE TABLE events_b PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
  -- A reference added NOT VALID, with rows that point nowhere.
  CREATE TABLE notes (id int PRIMARY KEY, user_id int NOT NULL);
  CREATE TABLE countries (code text PRIMARY KEY);
  CREATE TABLE addresses (id int PRIMARY KEY, account_id int NOT NULL REFERENCES accounts, country_code text NOT NULL REFERENCES countries);
  CREATE SCHEMA billing;
  CREATE TABLE billing.invoices (id int PRIMARY KEY, account_id int NOT NULL REFERENCES public.accounts);
  CREATE TABLE billing.invoice_lines (id int PRIMARY KEY, invoice_id int NOT NULL REFERENCES billing.invoices, project_id int REFERENCES public.projects);

  INSERT INTO accounts SELECT g, 'account ' || g FROM generate_series(1, 4) g;
  INSERT INTO users SELECT g, 1 + g % 4 FROM generate_series(1, 40) g;
  INSERT INTO projects SELECT g, 1 + g % 4 FROM generate_series(1, 20) g;
  INSERT INTO tasks SELECT g, 1 + g % 20, NULL, NULL FROM generate_series(1, 200) g;
  -- Assignees of the task's own account (user 4k + a is in account a + 1 ...), then ${bad.assignee} of another.
  UPDATE tasks t SET assignee_id = (SELECT min(u.id) FROM users u JOIN projects p ON p.account_id = u.account_id WHERE p.id = t.project_id) WHERE t.id <= 100;
  UPDATE tasks t SET assignee_id = (SELECT min(u.id) FROM users u JOIN projects p ON p.account_id <> u.account_id WHERE p.id = t.project_id) WHERE t.id > 190 AND t.id <= 190 + ${bad.assignee};
  -- Parents in the same project, then ${bad.parent} in another account.
  UPDATE tasks SET parent_id = id - 20 WHERE id > 20 AND id <= 60;
  UPDATE tasks t SET parent_id = (SELECT min(o.id) FROM tasks o JOIN projects op ON op.id = o.project_id JOIN projects tp ON tp.id = t.project_id WHERE op.account_id <> tp.account_id)
   WHERE t.id > 180 AND t.id <= 180 + ${bad.parent};
  INSERT INTO comments SELECT g, 1 + g % 40, NULL FROM generate_series(1, 50) g;
  INSERT INTO comments SELECT 100 + g, NULL, g FROM generate_series(1, ${bad.commentsByTask}) g;
  INSERT INTO comments SELECT 200 + g, NULL, NULL FROM generate_series(1, ${bad.commentsOrphan}) g;
  INSERT INTO task_tags SELECT project_id, id, 'tag' FROM tasks;
  INSERT INTO activity_log (account_id, actor_id) SELECT 1 + g % 4, g FROM generate_series(1, 10) g;
  INSERT INTO events SELECT g, 1 + g % 4, date '2024-06-01' + g FROM generate_series(1, 300) g;
  INSERT INTO notes SELECT g, g FROM generate_series(1, 30) g;
  INSERT INTO notes SELECT 100 + g, 1000 + g FROM generate_series(1, ${bad.dangling}) g;
  ALTER TABLE notes ADD CONSTRAINT notes_user_id_fkey FOREIGN KEY (user_id) REFERENCES users NOT VALID;
  INSERT INTO countries VALUES ('FR'), ('DE');
  INSERT INTO addresses SELECT g, 1 + g % 4, 'FR' FROM generate_series(1, 8) g;
  INSERT INTO billing.invoices SELECT g, 1 + g % 4 FROM generate_series(1, 12) g;
  INSERT INTO billing.invoice_lines SELECT g, 1 + g % 12, NULL FROM generate_series(1, 24) g;
  -- ${bad.invoiceLines} line names a project of another account than its invoice's.
  UPDATE billing.invoice_lines SET project_id = (SELECT min(p.id) FROM projects p WHERE p.account_id <> (SELECT i.account_id FROM billing.invoices i WHERE i.id = invoice_id)) WHERE id = 1;
  ANALYZE;
`;

const byName = (analysis: TenancyAnalysis, name: string): TableAnalysis => {
  const found = analysis.tables.find((t) => t.table === (name.includes('.') ? name : `public.${name}`));
  if (!found) throw new Error(`no table ${name}`);
  return found;
};
const pathOf = (t: TableAnalysis) => [t.table, ...t.via.map((h) => h.references)].join(' → ');
const edge = (t: TableAnalysis, column: string) => t.consistency.find((e) => e.columns[0] === column);

describe('tenancy analyze on a legacy schema', () => {
  const keep = dropAfterAll();
  let template: string;
  beforeAll(async () => {
    const db = keep(await freshDatabase('antpl'));
    await query(db.url, schema);
    template = db.name;
  });
  const copy = async () => keep(await freshDatabase('an', template));

  it('places every table, derives paths, and counts unresolved rows and conflicts exactly', async () => {
    const db = await copy();
    const dir = writePlan({});
    const { analysis } = await analyze({ url: db.url, dir, owner: 'accounts' });
    expect(analysis.owner).toBe('public.accounts');
    expect(Object.fromEntries(analysis.tables.map((t) => [t.table, t.role]))).toEqual({
      'public.accounts': 'owner',
      'public.activity_log': 'tenant',
      'public.addresses': 'tenant',
      'public.events': 'tenant',
      'public.projects': 'tenant',
      'public.users': 'tenant',
      'billing.invoices': 'tenant',
      'public.comments': 'tenant',
      'public.notes': 'tenant',
      'public.tasks': 'tenant',
      'billing.invoice_lines': 'tenant',
      'public.task_tags': 'tenant',
      'public.countries': 'global',
    });
    // Fallbacks: the shorter nullable path first, the other after it (COALESCE).
    const comments = byName(analysis, 'comments');
    expect(pathOf(comments)).toBe('public.comments → public.users → public.accounts');
    expect(comments.fallbacks.map((f) => f.map((h) => h.columns.join(',')).join(' → '))).toEqual(['task_id → project_id → account_id']);
    expect(comments.unresolved).toBe(bad.commentsOrphan);
    expect(edge(comments, 'task_id')?.conflicts).toBe(0);
    // Conflicts, self-references included.
    const tasks = byName(analysis, 'tasks');
    expect(pathOf(tasks)).toBe('public.tasks → public.projects → public.accounts');
    expect(tasks.unresolved).toBe(0);
    expect(edge(tasks, 'assignee_id')?.conflicts).toBe(bad.assignee);
    expect(edge(tasks, 'parent_id')).toMatchObject({ selfReference: true, conflicts: bad.parent });
    // Composite keys: one hop; a NOT VALID reference that dangles leaves rows unresolved.
    expect(byName(analysis, 'task_tags').via[0]?.columns).toEqual(['project_id', 'task_id']);
    expect(byName(analysis, 'task_tags').unresolved).toBe(0);
    expect(byName(analysis, 'notes').unresolved).toBe(bad.dangling);
    // The partitioned table is one table; the other schema is read and followed.
    expect(byName(analysis, 'events').estimatedRows).toBe(300);
    expect(pathOf(byName(analysis, 'billing.invoice_lines'))).toBe('billing.invoice_lines → billing.invoices → public.accounts');
    expect(edge(byName(analysis, 'billing.invoice_lines'), 'project_id')?.conflicts).toBe(bad.invoiceLines);
    expect(byName(analysis, 'countries').referencedBy).toEqual(['public.addresses']);
    // Hints: no primary key, a reference without a foreign key.
    expect(analysis.hints).toContainEqual(expect.objectContaining({ table: 'public.activity_log', hint: expect.stringContaining('no primary key') }));
    expect(analysis.hints).toContainEqual(expect.objectContaining({ table: 'public.activity_log', column: 'actor_id' }));
  });

  it('carries each conflict policy of the model, and skips the counts with data: false', async () => {
    const db = await copy();
    const dir = writePlan({
      'tenantify.config.json': JSON.stringify({
        tenancy: {
          owner: 'accounts',
          tables: {
            tasks: { conflicts: { assignee_id: 'detach', parent_id: 'keep' }, unresolved: 'delete' },
            comments: { conflicts: { task_id: 'delete' }, unresolved: 'keep' },
            'billing.invoice_lines': { conflicts: { project_id: 'fail' } },
          },
        },
      }),
    });
    const { analysis } = await analyze({ url: db.url, dir, data: false });
    const policies = analysis.tables.flatMap((t) => t.consistency.map((e) => `${t.table}.${e.columns[0]}:${e.policy}`));
    expect(policies).toEqual(expect.arrayContaining(['public.tasks.assignee_id:detach', 'public.tasks.parent_id:keep', 'public.comments.task_id:delete', 'billing.invoice_lines.project_id:fail']));
    expect(byName(analysis, 'tasks').unresolvedPolicy).toBe('delete');
    expect(byName(analysis, 'comments').unresolved).toBeUndefined();
    expect(edge(byName(analysis, 'tasks'), 'assignee_id')?.conflicts).toBeUndefined();
  });

  it('reads only the schemas asked for', async () => {
    const db = await copy();
    const { analysis } = await analyze({ url: db.url, dir: writePlan({}), owner: 'invoices', tenants: 'invoices', schemas: ['billing'], data: true });
    expect(analysis.tables.map((t) => `${t.table}:${t.role}`)).toEqual(['billing.invoices:owner', 'billing.invoice_lines:tenant']);
    expect(analysis.key).toBe('invoice_id');
  });

  describe('the command', () => {
    it('--json prints the contract\'s document, reads only, and writes nothing', async () => {
      const db = await copy();
      const before = await contentFingerprint(db.url);
      const dir = writePlan({});
      const result = await runCli(['tenancy', 'analyze', '-d', db.url, '--dir', dir, '--owner', 'accounts', '--json']);
      expect(result.code, result.stderr).toBe(0);
      const document = JSON.parse(result.stdout);
      expect(Object.keys(document)).toEqual(['owner', 'tenants', 'key', 'tables', 'hints']);
      expect(document).toMatchObject({ owner: 'public.accounts', tenants: 'public.organizations', key: 'organization_id' });
      const tasks = document.tables.find((t: { table: string }) => t.table === 'public.tasks');
      expect(Object.keys(tasks)).toEqual(['table', 'role', 'rows', 'via', 'unresolved', 'consistency']);
      expect(tasks.via[0]).toEqual({ table: 'public.tasks', columns: ['project_id'], references: 'public.projects', nullable: false });
      expect(tasks.consistency).toContainEqual({ columns: ['assignee_id'], references: 'public.users', conflicts: bad.assignee });
      expect(document.tables.find((t: { table: string }) => t.table === 'public.countries')).toEqual({ table: 'public.countries', role: 'global', referencedBy: ['public.addresses'] });
      // Read-only: no ledger, no config written, the data as it was.
      expect(await query(db.url, "SELECT 1 FROM pg_namespace WHERE nspname = 'tenantify'")).toEqual([]);
      expect(existsSync(join(dir, 'tenantify.config.json'))).toBe(false);
      expect(await contentFingerprint(db.url)).toEqual(before);
    });

    it('prints the table with paths, and the graph as mermaid and dot', async () => {
      const db = await copy();
      const dir = writePlan({});
      const table = await runCli(['tenancy', 'analyze', '-d', db.url, '--dir', dir, '--owner', 'accounts']);
      expect(table.code, table.stderr).toBe(0);
      expect(table.stdout).toMatch(/public\.task_tags\s*│ tenant \(3\)\s*│ public\.task_tags → public\.tasks → public\.projects → public\.accounts/);
      expect(table.stdout).toContain(`assignee_id → public.users: ${bad.assignee}`);
      expect(table.stdout).toContain('Hints');
      const mermaid = await runCli(['tenancy', 'analyze', '-d', db.url, '--dir', dir, '--owner', 'accounts', '--format', 'mermaid', '--no-data']);
      expect(mermaid.stdout).toMatch(/^flowchart BT/);
      expect(mermaid.stdout).toContain('public_tasks -->|project_id| public_projects');
      expect(mermaid.stdout).toContain('public_tasks -.->|assignee_id| public_users');
      const dot = await runCli(['tenancy', 'analyze', '-d', db.url, '--dir', dir, '--owner', 'accounts', '--format', 'dot', '--no-data']);
      expect(dot.stdout).toContain('"public.tasks" -> "public.users" [label="assignee_id", style=dashed');
    });

    it('--write stores the model, keeping the other keys, and it loads back', async () => {
      const db = await copy();
      const dir = writePlan({ 'tenantify.config.json': JSON.stringify({ ledgerSchema: 'ledger', retries: 5 }, null, 2) });
      const result = await runCli(['tenancy', 'analyze', '-d', db.url, '--dir', dir, '--owner', 'accounts', '--write', '--no-data']);
      expect(result.code, result.stderr).toBe(0);
      const written = JSON.parse(readFileSync(join(dir, 'tenantify.config.json'), 'utf8'));
      expect(written).toEqual({
        ledgerSchema: 'ledger',
        retries: 5,
        tenancy: { owner: 'accounts', tenants: 'organizations', key: 'organization_id', setting: 'app.tenant_id', rls: false },
      });
      expect((await loadConfig(dir)).tenancy?.owner).toBe('accounts');
      // Absent: created. Then the model comes from the file without flags.
      const fresh = writePlan({});
      expect((await runCli(['tenancy', 'analyze', '-d', db.url, '--dir', fresh, '--owner', 'accounts', '--write', '--no-data'])).code).toBe(0);
      const again = await runCli(['tenancy', 'analyze', '-d', db.url, '--dir', fresh, '--json', '--no-data']);
      expect(JSON.parse(again.stdout).owner).toBe('public.accounts');
    });

    it('exits 2 on a model that does not fit, naming the key, and changes nothing', async () => {
      const db = await copy();
      const before = await contentFingerprint(db.url);
      const config = JSON.stringify({ tenancy: { owner: 'accounts', tables: { tasks: { conflicts: { project_id: 'detach' } } } } }, null, 2);
      const dir = writePlan({ 'tenantify.config.json': config });
      const result = await runCli(['tenancy', 'analyze', '-d', db.url, '--dir', dir, '--write']);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('tenancy.tables.tasks.conflicts.project_id: "project_id" is no consistency edge of public.tasks');
      expect(readFileSync(join(dir, 'tenantify.config.json'), 'utf8')).toBe(config);
      expect(await contentFingerprint(db.url)).toEqual(before);

      writeFileSync(join(dir, 'tenantify.config.json'), JSON.stringify({ tenancy: { owner: 'accounts', tables: { tasks: { unresolved: 'drop' } } } }));
      const invalid = await runCli(['tenancy', 'analyze', '-d', db.url, '--dir', dir]);
      expect(invalid.code).toBe(2);
      expect(invalid.stderr).toContain('unresolved: fail|delete|keep');
      expect(invalid.stderr).toContain('at tenancy.tables.tasks');

      const none = await runCli(['tenancy', 'analyze', '-d', db.url, '--dir', writePlan({})]);
      expect(none.code).toBe(2);
      expect(none.stderr).toContain('no tenancy model');
      const unknown = await runCli(['tenancy', 'analyze', '-d', db.url, '--dir', writePlan({}), '--owner', 'acounts']);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('tenancy.owner: no table named "acounts"');
    });
  });
});

/**
 * The seed fixtures, each with its natural owner. Beyond the roles and paths, every
 * derivation is checked against the catalog, the unresolved counts against a hand-written
 * query, and each fixture's README against the table the analysis prints now.
 */
describe('tenancy analyze on the seed fixtures', () => {
  const keep = dropAfterAll();
  const fixtures: { name: string; owner: string; tenants?: string; tenantTables: string[]; paths: Record<string, string>; unresolvedSql?: Record<string, string> }[] = [
    {
      name: 'hosts-to-organizations',
      owner: 'users',
      tenantTables: ['audit_logs', 'hosts'],
      paths: { hosts: 'hosts → users', audit_logs: 'audit_logs → users' },
      unresolvedSql: { audit_logs: 'SELECT count(*)::int AS n FROM audit_logs a WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = a.user_id)' },
    },
    {
      name: 'restaurant-platform',
      owner: 'restaurants',
      tenantTables: ['customers', 'ingredients', 'menu_items', 'menus', 'recipe_ingredients', 'recipes', 'reservations', 'restaurant_staff'],
      paths: { menu_items: 'menu_items → menus → restaurants', recipe_ingredients: 'recipe_ingredients → ingredients → restaurants', reservations: 'reservations → restaurants' },
    },
    { name: 'customers-to-organizations', owner: 'customers', tenantTables: ['usage_events'], paths: { usage_events: 'usage_events → customers' } },
    {
      name: 'ai-saas-subscriptions',
      owner: 'users',
      tenantTables: ['accounts', 'businesses', 'health_metrics', 'messages'],
      paths: { health_metrics: 'health_metrics → businesses → users', messages: 'messages → users' },
    },
    {
      name: 'organization-modules',
      owner: 'organization',
      tenants: 'organization',
      tenantTables: ['invitation', 'member', 'team', 'teamMember'],
      paths: { teamMember: 'teamMember → team → organization', member: 'member → organization' },
    },
  ];

  for (const fixture of fixtures) {
    it(`${fixture.name}: owner ${fixture.owner}`, async () => {
      const template = keep(await fixtureTemplate(join('fixtures', fixture.name, 'legacy.sql'), 'fxt'));
      const db = keep(await freshDatabase('fx', template.name));
      await query(db.url, 'ANALYZE');
      const { analysis, catalog } = await analyze({ url: db.url, dir: writePlan({}), owner: fixture.owner, tenants: fixture.tenants });
      const short = (name: string) => name.replace(/^public\./, '');
      expect(short(analysis.owner)).toBe(fixture.owner);
      expect(analysis.ownerIsTenants).toBe(fixture.tenants === fixture.owner);
      expect(analysis.tables.filter((t) => t.role === 'tenant').map((t) => short(t.table)).sort()).toEqual([...fixture.tenantTables].sort());
      for (const [table, path] of Object.entries(fixture.paths)) expect(pathText(byName(analysis, table).via, short)).toBe(path);
      // Every hop is a foreign key of the catalog, every path ends at the owner, and every
      // table left global has no foreign key into a tenant table.
      const tables = new Map(catalog.tables.map((t) => [t.name, t]));
      for (const t of analysis.tables) {
        if (t.role === 'tenant') {
          expect(t.via.at(-1)?.references).toBe(analysis.owner);
          expect(t.depth).toBe(t.via.length);
          for (const hop of t.via) expect(tables.get(hop.table)?.foreignKeys.find((fk) => fk.name === hop.constraint)?.columns).toEqual(hop.columns);
        }
        if (t.role === 'global' && t.table !== analysis.tenants) {
          expect(tables.get(t.table)?.foreignKeys.filter((fk) => ['tenant', 'owner'].includes(byName(analysis, fk.references).role))).toEqual([]);
        }
      }
      for (const [table, sql] of Object.entries(fixture.unresolvedSql ?? {})) {
        const [row] = await query<{ n: number }>(db.url, sql);
        expect(byName(analysis, table).unresolved).toBe(row?.n);
      }
      const readme = readFileSync(join('fixtures', fixture.name, 'README.md'), 'utf8');
      expect(readme).toContain(analyzeTableText(analysis, true));
    });
  }
});
