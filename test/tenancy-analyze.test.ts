import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { readCatalog } from '../src/tenancy/catalog.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';

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
    await expect(withClient(db.url, (c) => readCatalog(c, { schemas: ['nope'] }))).rejects.toThrow(/no schema named nope/);
  });
});
