/** The pure parts of the ways into tenant rows: views over views walked to their tables (as whom), and what a function body reads. */
import { beforeAll, describe, expect, it } from 'vitest';
import { appReaders, bypassReason, tenantReads, type Access, type AccessRelation } from '../../src/tenancy/access.js';
import { bodyReads, loadBodyParsers, resolveName } from '../../src/tenancy/function-body.js';

const view = (name: string, reads: string[], extra: Partial<AccessRelation> = {}): AccessRelation => ({
  name: `public.${name}`,
  kind: 'view',
  owner: 'postgres',
  securityInvoker: false,
  reads: reads.map((r) => `public.${r}`),
  readers: ['app'],
  ...extra,
});

const access: Access = {
  roles: [
    { name: 'postgres', superuser: true, bypassRls: false },
    { name: 'app', superuser: false, bypassRls: false },
    { name: 'owner', superuser: false, bypassRls: false },
    { name: 'reporting', superuser: false, bypassRls: true },
  ],
  relations: [
    view('titles', ['tasks']),
    view('recent', ['titles'], { securityInvoker: true }),
    view('mine', ['tasks', 'plans'], { securityInvoker: true }),
    view('counts', ['tasks'], { kind: 'matview', owner: 'owner' }),
    view('over_counts', ['counts'], { securityInvoker: true }),
    view('loop_a', ['loop_b']),
    view('loop_b', ['loop_a', 'tasks'], { owner: 'owner' }),
  ],
  functions: [],
  settingDefaults: [],
};
const tenant = (name: string) => name === 'public.tasks';

describe('tenantReads: views over views, to the tenant tables they read and as whom', () => {
  it('a view that is not security_invoker reads as its owner; one that is reads as its reader', () => {
    expect(tenantReads(access, 'public.titles', 'app', tenant)).toEqual([
      { table: 'public.tasks', as: 'postgres', through: ['public.titles', 'public.tasks'] },
    ]);
    expect(tenantReads(access, 'public.recent', 'app', tenant)).toEqual([
      { table: 'public.tasks', as: 'postgres', through: ['public.recent', 'public.titles', 'public.tasks'] },
    ]);
    expect(tenantReads(access, 'public.mine', 'app', tenant)).toEqual([
      { table: 'public.tasks', as: 'app', through: ['public.mine', 'public.tasks'] },
    ]);
  });

  it('a materialized view on the way is named; a cycle ends', () => {
    expect(tenantReads(access, 'public.over_counts', 'app', tenant)).toEqual([
      {
        table: 'public.tasks',
        as: 'owner',
        through: ['public.over_counts', 'public.counts', 'public.tasks'],
        materialized: 'public.counts',
      },
    ]);
    expect(tenantReads(access, 'public.loop_a', 'app', tenant)).toEqual([
      { table: 'public.tasks', as: 'owner', through: ['public.loop_a', 'public.loop_b', 'public.tasks'] },
    ]);
  });

  it('who bypasses row level security on a table, and who counts as the app role', () => {
    const table = { name: 'public.tasks', owner: 'owner', rls: { enabled: true, forced: false } };
    expect(bypassReason(access, 'postgres', table)).toBe('postgres is a superuser');
    expect(bypassReason(access, 'reporting', table)).toBe('reporting has BYPASSRLS');
    expect(bypassReason(access, 'owner', table)).toBe('owner owns public.tasks and row level security is not forced');
    expect(bypassReason(access, 'owner', { ...table, rls: { enabled: true, forced: true } })).toBeNull();
    expect(bypassReason(access, 'app', table)).toBeNull();
    expect(bypassReason(access, 'app', { ...table, rls: { enabled: false, forced: false } })).toBe(
      'row level security is off on public.tasks',
    );
    expect(appReaders(access, ['postgres', 'app', 'owner', 'reporting'], 'owner', undefined)).toEqual(['app']);
    expect(appReaders(access, ['postgres', 'app'], 'owner', 'app')).toEqual(['app']);
    expect(appReaders(access, ['postgres'], 'owner', 'app')).toEqual([]);
  });
});

describe('bodyReads: what a function body reads, from its parse tree', () => {
  beforeAll(loadBodyParsers);

  it('SQL in a string: every relation but its own CTEs', () => {
    const names = bodyReads(
      'sql',
      'WITH a AS (SELECT * FROM accounts) SELECT a.name FROM a JOIN s.tasks t ON t.account_id = a.id',
      '',
    ).names;
    expect(names.map((n) => `${n.schema ?? ''}.${n.name}`).sort()).toEqual(['.accounts', 's.tasks']);
  });

  it('PL/pgSQL: statements, expressions with a sub-select, and dynamic SQL', () => {
    const definition = `CREATE FUNCTION f(x int) RETURNS SETOF int LANGUAGE plpgsql AS $$
      DECLARE n int;
      BEGIN
        SELECT count(*) INTO n FROM tasks WHERE id = x;
        n := (SELECT count(*) FROM comments);
        IF n > 0 THEN PERFORM 1 FROM public.accounts; END IF;
        RETURN QUERY SELECT id FROM projects;
        EXECUTE 'SELECT 1';
      END $$`;
    const read = bodyReads('plpgsql', '', definition);
    expect(read.names.map((n) => `${n.schema ?? ''}.${n.name}`)).toEqual(['.tasks', '.comments', 'public.accounts', '.projects']);
    expect(read.dynamic).toBe(true);
  });

  it('a body that does not parse says so; another language cannot be read', () => {
    expect(bodyReads('sql', 'SELEC nothing', '').unreadable).toBeTruthy();
    expect(bodyReads('c', 'x', '').unreadable).toBe('a body in c cannot be read');
  });

  it('names resolve along the search path to the first schema that has them', () => {
    const exists = (n: string) => n === 'app.tasks' || n === 'public.tasks';
    expect(resolveName({ schema: null, name: 'tasks' }, ['app', 'public'], exists)).toBe('app.tasks');
    expect(resolveName({ schema: null, name: 'tasks' }, ['other', 'public'], exists)).toBe('public.tasks');
    expect(resolveName({ schema: 's', name: 'tasks' }, ['public'], exists)).toBe('s.tasks');
  });
});
