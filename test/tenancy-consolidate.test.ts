/**
 * tenancy consolidate end to end on fixtures/schema-per-customer: eight customer schemas of
 * one shape (2 to 2,500 users, 10 to 12,500 tasks; overlapping ids, a self-reference, a
 * composite primary key, a natural text key, multi-byte text, shared lookup tables in
 * public) and one drifted schema. Each source's rows and joins by natural values are
 * compared with the target's, under --ids keep and --ids remap.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsolidatedSourceRecord } from '../src/app/consolidate-report.js';
import { runCli, startCli } from './support/cli.js';
import { contentFingerprint, dropAfterAll, fixtureTemplate, freshDatabase, holdGate, query, until, withClient } from './support/db.js';
import { schemaDump } from './support/dump.js';

const fixture = new URL('../fixtures/schema-per-customer/legacy.sql', import.meta.url).pathname;
const customers = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'].map((c) => `customer_${c}`);
const tables = ['tags', 'users', 'projects', 'project_tags', 'tasks'];

let template: { name: string; drop: () => Promise<void> };
beforeAll(async () => {
  template = await fixtureTemplate(fixture, 'consolidate');
});
afterAll(async () => {
  await template?.drop();
});

function planDir(): string {
  return join(mkdtempSync(join(tmpdir(), 'consolidate-')), 'plan');
}

/** A plan whose TypeScript units import tenantify, as from a plan repository that has it installed. */
function linkTenantify(dir: string): void {
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  symlinkSync(dirname(dirname(fileURLToPath(import.meta.url))), join(dir, 'node_modules', 'tenantify'));
}

async function consolidate(url: string, dir: string, ...extra: string[]) {
  return runCli([
    'tenancy',
    'consolidate',
    '--from-schemas',
    'customer_%',
    '--exclude',
    'customer_zeta',
    '-d',
    url,
    '--dir',
    dir,
    '--batch-size',
    '1000',
    '--json',
    ...extra,
  ]);
}

/** Per tenant: every table's row count, and every task joined to its project, owner, assignee, the assignee's manager and the project's tags, by natural values. */
async function tenantContent(url: string, from: { schema: string } | { tenant: number }): Promise<Record<string, string | number>> {
  const inSource = 'schema' in from;
  const t = (name: string) => (inSource ? `${from.schema}.${name}` : `public.${name}`);
  const same = (a: string, b: string) => (inSource ? 'true' : `${a}.organization_id = ${b}.organization_id`);
  const where = (alias: string) => (inSource ? 'true' : `${alias}.organization_id = ${(from as { tenant: number }).tenant}`);
  const counts = tables.map((table) => `(SELECT count(*)::int FROM ${t(table)} x WHERE ${where('x')}) AS ${table}`).join(', ');
  // One connection: the counts and the joins in one query.
  const [row] = await query<Record<string, string | number>>(
    url,
    `SELECT ${counts}, (SELECT md5(string_agg(x, E'\\n' ORDER BY x)) AS md5 FROM (
       SELECT concat_ws('|', tk.title, tk.done, p.title, o.email, o.name, o.country_code, a.email, m.email,
                        (SELECT string_agg(pt.tag_slug || '=' || tg.label, ',' ORDER BY pt.tag_slug)
                           FROM ${t('project_tags')} pt JOIN ${t('tags')} tg ON tg.slug = pt.tag_slug AND ${same('tg', 'pt')}
                          WHERE pt.project_id = p.id AND ${same('pt', 'p')})) AS x
         FROM ${t('tasks')} tk
         JOIN ${t('projects')} p ON p.id = tk.project_id AND ${same('p', 'tk')}
         JOIN ${t('users')} o ON o.id = p.owner_id AND ${same('o', 'p')}
         LEFT JOIN ${t('users')} a ON a.id = tk.assignee_id AND ${same('a', 'tk')}
         LEFT JOIN ${t('users')} m ON m.id = a.manager_id AND ${same('m', 'a')}
        WHERE ${where('tk')}) q) AS joins`,
  );
  return row ?? {};
}

async function expectEveryCustomerCopied(url: string, except: string[] = []): Promise<void> {
  for (const [i, schema] of customers.entries()) {
    if (except.includes(schema)) continue;
    expect(await tenantContent(url, { tenant: i + 1 }), schema).toEqual(await tenantContent(url, { schema }));
  }
}

/** apply --json's per-source records: every table's rows equal the source schema's, its size, time and verify. */
async function expectSourceRecords(
  url: string,
  document: { sources?: unknown },
  expected: { source: string; schema: string; tenantId: number }[],
) {
  const records = document.sources as ConsolidatedSourceRecord[];
  expect(records.map((r) => [r.source, r.tenantId])).toEqual(expected.map((e) => [e.source, e.tenantId]));
  for (const [i, e] of expected.entries()) {
    const [counts] = await query<Record<string, number>>(
      url,
      `SELECT ${tables.map((t) => `(SELECT count(*)::int FROM ${e.schema}.${t}) AS ${t}`).join(', ')}`,
    );
    const record = records[i];
    expect(record?.rows, e.source).toEqual(counts);
    expect(record?.totalRows).toBe(Object.values(counts ?? {}).reduce((n, x) => n + x, 0));
    expect(record?.unit).toMatch(new RegExp(`^\\d+_consolidate_${e.source}$`));
    expect(record?.bytes).toBeGreaterThan(0);
    expect(record?.seconds).toBeGreaterThan(0);
    expect(record?.verify).toEqual({ ok: true, checks: tables.length });
  }
  return records;
}

describe('tenancy consolidate', () => {
  const dropLater = dropAfterAll();

  it('preflight: a drifted schema is named with its differences, exit 2, and nothing is written; apply --dry-run of the plan runs every unit and keeps nothing', async () => {
    const db = dropLater(await freshDatabase('consolidate', template.name));
    const dir = planDir();
    const before = schemaDump(db.url);
    const result = await runCli(['tenancy', 'consolidate', '--from-schemas', 'customer_%', '-d', db.url, '--dir', dir, '--json']);
    expect(result.code).toBe(2);
    const error = JSON.parse(result.stdout).error;
    expect(error.code).toBe('consolidate-drift');
    expect(error.exitCode).toBe(2);
    expect(error.details).toEqual(
      expect.arrayContaining([
        'customer_zeta.tasks: extra column priority (integer)',
        "customer_zeta.users: column name is character varying(80), the reference's is text",
        expect.stringMatching(/^customer_zeta\.tasks: missing index tasks_project_id_idx/),
      ]),
    );
    expect(error.details.every((d: string) => d.startsWith('customer_zeta.'))).toBe(true);
    expect(existsSync(dir)).toBe(false);
    // --parallel copies schema sources only: refused with source databases before anything is read.
    const sourcesFile = join(mkdtempSync(join(tmpdir(), 'consolidate-')), 'sources.txt');
    writeFileSync(sourcesFile, `alpha ${db.url}\n`);
    const parallel = await runCli([
      'tenancy',
      'consolidate',
      '--from-databases',
      sourcesFile,
      '--parallel',
      '2',
      '-d',
      db.url,
      '--dir',
      dir,
      '--json',
    ]);
    expect(parallel.code).toBe(2);
    expect(JSON.parse(parallel.stdout).error.code).toBe('consolidate-parallel-databases');
    expect(existsSync(dir)).toBe(false);
    // Read only: no ledger, no table, nothing (the content is only read).
    expect(schemaDump(db.url)).toBe(before);

    // apply --dry-run of a consolidation plan: every unit runs (each source's copy and verify) and nothing stays.
    const dryDir = planDir();
    const planned = await consolidate(db.url, dryDir, '--ids', 'remap');
    expect(planned.code, planned.stderr).toBe(0);
    const dry = await runCli(['apply', '--dry-run', '-d', db.url, '--dir', dryDir, '--json']);
    expect(dry.code, dry.stdout).toBe(0);
    const document = JSON.parse(dry.stdout);
    expect(document.dryRun).toBe(true);
    expect(document.units).toHaveLength(customers.length + 1);
    expect(
      document.units.every((u: { outcome: string; checks: { ok: boolean }[] }) => u.outcome === 'applied' && u.checks.every((c) => c.ok)),
    ).toBe(true);
    expect(document.sources).toBeUndefined();
    expect(await query(db.url, "SELECT FROM pg_namespace WHERE nspname = 'consolidated_ids'")).toHaveLength(0);
    expect(await query(db.url, "SELECT FROM pg_class WHERE relname = 'organizations'")).toHaveLength(0);
  });

  it('--ids keep --parallel 3: kill -9 mid-copy, apply again: every customer arrives whole, check is clean, new rows do not collide, rollback removes the newest tenant, rollback --all the rest', async () => {
    const db = dropLater(await freshDatabase('consolidate', template.name));
    const dir = planDir();
    linkTenantify(dir);
    const before = { schema: schemaDump(db.url), content: await contentFingerprint(db.url) };
    const planned = await consolidate(db.url, dir, '--parallel', '3');
    expect(planned.code, planned.stderr).toBe(0);
    const document = JSON.parse(planned.stdout);
    expect(document.sources.map((s: { source: string }) => s.source)).toEqual(customers);
    expect(document.files.map((f: { unit: string }) => f.unit.replace(/^\d+_/, ''))).toEqual([
      'consolidate_shared_tables',
      'consolidate_copy',
      ...customers.map((c) => `consolidate_${c}`),
    ]);
    // A plan is only written: the database is as it was.
    expect(schemaDump(db.url)).toBe(before.schema);

    // Killed while the last (largest) customer is copied: the sources committed before stay, the ones in flight leave nothing.
    const run = startCli(['apply', '-d', db.url, '--dir', dir]);
    await until(
      db.url,
      "SELECT count(*)::int AS n FROM pg_locks WHERE relation = 'customer_hotel.tasks'::regclass AND pid <> pg_backend_pid()",
    );
    run.child.kill('SIGKILL');
    await run.done;
    // The killed sessions end within a second (client_connection_check_interval), and their transactions with them.
    await until(
      db.url,
      "SELECT (count(*) = 0)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'tenantify consolidate copy%'",
    );
    const committed = (await query<{ id: number }>(db.url, 'SELECT id::int AS id FROM public.organizations ORDER BY id')).map((r) => r.id);
    expect(committed.length).toBeGreaterThanOrEqual(5);
    expect(committed).not.toContain(8);

    const applied = await runCli(['apply', '-d', db.url, '--dir', dir, '--json']);
    expect(applied.code, applied.stderr).toBe(0);
    // Per source in --json: rows, size, time and the verify queries passed in its snapshot; the sources committed before skipped.
    const copy = JSON.parse(applied.stdout).units.find((u: { id: string }) => u.id.endsWith('_consolidate_copy'));
    const copied = JSON.parse(copy.note.slice(copy.note.indexOf('['))) as {
      tenantId: number;
      skipped: boolean;
      rows: number;
      verified: number;
    }[];
    expect(copied.map((c) => c.tenantId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(copied.filter((c) => c.skipped).map((c) => c.tenantId)).toEqual(committed);
    expect(copied.filter((c) => !c.skipped).every((c) => c.verified === tables.length && c.rows > 0)).toBe(true);
    // And one record per source (each source's own unit ran in this run): rows per table equal the source's.
    await expectSourceRecords(
      db.url,
      JSON.parse(applied.stdout),
      customers.map((c, i) => ({ source: c, schema: c, tenantId: i + 1 })),
    );
    await expectEveryCustomerCopied(db.url);
    // Ids are kept: customer_golf's task 17 is tenant 7's task 17.
    const [golf] = await query<{ same: boolean }>(
      db.url,
      'SELECT (SELECT title FROM customer_golf.tasks WHERE id = 17) = (SELECT title FROM public.tasks WHERE organization_id = 7 AND id = 17) AS same',
    );
    expect(golf?.same).toBe(true);
    // Shared lookup tables stay shared, and the consolidated rows reference them.
    const [fk] = await query<{ n: number }>(
      db.url,
      "SELECT count(*)::int AS n FROM pg_constraint WHERE conrelid = 'public.users'::regclass AND confrelid = 'public.countries'::regclass",
    );
    expect(fk?.n).toBe(1);

    const check = await runCli(['tenancy', 'check', '-d', db.url, '--dir', dir, '--strict', '--json']);
    expect(check.code, check.stdout).toBe(0);
    expect(JSON.parse(check.stdout).findings).toEqual([]);

    // The application's next rows take ids past every source's.
    const inserted = await query<{ id: number }>(
      db.url,
      "INSERT INTO public.users (organization_id, email, name) VALUES (3, 'new@customer_charlie.example', 'Neu') RETURNING id",
    );
    expect(inserted[0]?.id).toBeGreaterThan(2_500);
    await query(db.url, "DELETE FROM public.users WHERE email = 'new@customer_charlie.example'");

    const verify = await runCli(['verify', '-d', db.url, '--dir', dir]);
    expect(verify.code, verify.stderr).toBe(0);

    const bare = await runCli(['rollback', '-d', db.url, '--dir', dir, '--yes']);
    expect(bare.code, bare.stderr).toBe(0);
    for (const table of tables) {
      const rows = await query<{ tenant: number }>(
        db.url,
        `SELECT DISTINCT organization_id::int AS tenant FROM public.${table} ORDER BY 1`,
      );
      expect(
        rows.map((r) => r.tenant),
        table,
      ).toEqual([1, 2, 3, 4, 5, 6, 7]);
    }
    await expectEveryCustomerCopied(db.url, ['customer_hotel']);
    expect((await query(db.url, 'SELECT id FROM public.organizations WHERE id = 8')).length).toBe(0);

    const all = await runCli(['rollback', '--all', '-d', db.url, '--dir', dir, '--yes']);
    expect(all.code, all.stderr).toBe(0);
    expect(schemaDump(db.url)).toBe(before.schema);
    expect(await contentFingerprint(db.url)).toEqual(before.content);
  }, 300_000);

  it('--ids remap: new ids through kept mapping tables; kill -9 mid-apply, apply again: every customer exact', async () => {
    const db = dropLater(await freshDatabase('consolidate', template.name));
    const dir = planDir();
    const planned = await consolidate(db.url, dir, '--ids', 'remap');
    expect(planned.code, planned.stderr).toBe(0);
    const hotel = JSON.parse(planned.stdout).sources.find((s: { source: string }) => s.source === 'customer_hotel').unit as string;
    expect(readFileSync(join(dir, 'backfills', `${hotel}.sql`), 'utf8')).toContain('consolidated_ids.tasks');

    // Killed while the last (largest) customer's copy reads its last table. No snapshots: a
    // pg_dump of the growing shared tables before each customer is most of the run, and
    // nothing here rolls back.
    const run = startCli(['apply', '-d', db.url, '--dir', dir, '--no-snapshot']);
    await until(
      db.url,
      "SELECT count(*)::int AS n FROM pg_locks WHERE relation = 'customer_hotel.tasks'::regclass AND pid <> pg_backend_pid()",
    );
    run.child.kill('SIGKILL');
    await run.done;
    // The killed run's sessions end within a second (client_connection_check_interval) and its run
    // lock with them; until then its last statement may still finish and commit customer_hotel.
    await until(
      db.url,
      "SELECT (count(*) = 0)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'tenantify %'",
    );
    // Its copy is one transaction: customer_hotel is there whole or not at all, and no other customer is touched.
    const [partial] = await query<{ n: number; tenants: number[] }>(
      db.url,
      'SELECT (SELECT count(*)::int FROM public.tasks WHERE organization_id = 8) AS n, (SELECT array_agg(id::int ORDER BY id) FROM public.organizations) AS tenants',
    );
    const [hotelTasks] = await query<{ n: number }>(db.url, 'SELECT count(*)::int AS n FROM customer_hotel.tasks');
    expect([
      { n: 0, tenants: [1, 2, 3, 4, 5, 6, 7] },
      { n: hotelTasks?.n, tenants: [1, 2, 3, 4, 5, 6, 7, 8] },
    ]).toContainEqual(partial);

    const resumed = await runCli(['apply', '-d', db.url, '--dir', dir, '--no-snapshot']);
    expect(resumed.code, resumed.stderr).toBe(0);
    await expectEveryCustomerCopied(db.url);
    // Every old id maps to exactly one new id, and the new ids are unique across tenants.
    const [ids] = await query<{ mapped: number; distinct_new: number; tasks: number }>(
      db.url,
      'SELECT (SELECT count(*)::int FROM consolidated_ids.tasks) AS mapped, (SELECT count(DISTINCT new_id)::int FROM consolidated_ids.tasks) AS distinct_new, (SELECT count(*)::int FROM public.tasks) AS tasks',
    );
    expect(ids?.mapped).toBe(ids?.tasks);
    expect(ids?.distinct_new).toBe(ids?.tasks);

    const check = await runCli(['tenancy', 'check', '-d', db.url, '--dir', dir, '--strict', '--json']);
    expect(check.code, check.stdout).toBe(0);
    // The content hash sees a value changed under the same counts: one of customer_hotel's tasks given another
    // of its users as assignee (a remapped reference, mapped back by the verify) fails that one check, exit 3.
    const swap = (to: string) =>
      query(
        db.url,
        `UPDATE public.tasks SET assignee_id = ${to} WHERE organization_id = 8 AND id = (SELECT min(id) FROM public.tasks WHERE organization_id = 8 AND assignee_id IS NOT NULL)`,
      );
    const [assignee] = await query<{ id: number }>(
      db.url,
      'SELECT assignee_id::int AS id FROM public.tasks WHERE organization_id = 8 AND assignee_id IS NOT NULL ORDER BY id LIMIT 1',
    );
    await swap(`(SELECT min(id) FROM public.users WHERE organization_id = 8 AND id <> ${assignee?.id})`);
    const tampered = await runCli(['verify', '-d', db.url, '--dir', dir, '--json']);
    expect(tampered.code).toBe(3);
    const failed = (JSON.parse(tampered.stdout) as { checks: { unit: string; name: string; ok: boolean }[] }).checks.filter((c) => !c.ok);
    expect(failed.map((c) => c.name)).toEqual(['customer_hotel.tasks arrived whole: row count and content hash equal']);
    await swap(String(assignee?.id));
    const inserted = await query<{ id: number }>(
      db.url,
      "INSERT INTO public.tasks (organization_id, project_id, title) VALUES (1, (SELECT min(id) FROM public.projects WHERE organization_id = 1), 'neu') RETURNING id::int AS id",
    );
    const [max] = await query<{ n: number }>(db.url, 'SELECT max(new_id)::int AS n FROM consolidated_ids.tasks');
    expect(inserted[0]?.id).toBeGreaterThan(max?.n ?? Infinity);
  }, 300_000);

  /** Plans one source, customer_delta, with a gate before its project_tags are copied (its tags are by then). */
  async function gatedDelta(url: string, ...extra: string[]) {
    const dir = planDir();
    const planned = await runCli([
      'tenancy',
      'consolidate',
      '--from-schemas',
      'customer_delta',
      '-d',
      url,
      '--dir',
      dir,
      '--json',
      ...extra,
    ]);
    expect(planned.code, planned.stderr).toBe(0);
    const file = join(dir, 'backfills', `${JSON.parse(planned.stdout).sources[0].unit}.sql`);
    const gate = await holdGate(url);
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/^-- project_tags /m);
    writeFileSync(file, text.replace(/^-- project_tags /m, `${gate.sql}\n-- project_tags `));
    return { dir, gate, before: await tenantContent(url, { schema: 'customer_delta' }) };
  }

  /** The application's write to the source, with its own lock timeout (it changes nothing). */
  const appWrite = (url: string) =>
    withClient(url, async (client) => {
      await client.query("SET lock_timeout = '300ms'");
      await client.query('UPDATE customer_delta.tasks SET done = done WHERE id = 1');
    });

  it('a source is read in one snapshot: rows written during its copy reach no table, and the verify compares that snapshot', async () => {
    const db = dropLater(await freshDatabase('consolidate', template.name));
    const { dir, gate, before } = await gatedDelta(db.url);
    const run = startCli(['apply', '-d', db.url, '--dir', dir]);
    await gate.reached(run.done);
    // Committed while the copy waits between tags (copied) and project_tags: a tag, and a project tagged with it.
    // Read in another snapshot, project_tags would bring a row whose tag never came (a foreign key error).
    await query(
      db.url,
      "INSERT INTO customer_delta.tags VALUES ('tag-new', 'Neu'); INSERT INTO customer_delta.project_tags VALUES (1, 'tag-new')",
    );
    await gate.open();
    const applied = await run.done;
    expect(applied.code, applied.stderr).toBe(0);
    expect(await tenantContent(db.url, { tenant: 1 })).toEqual(before);
    expect(await query(db.url, "SELECT FROM public.project_tags WHERE tag_slug = 'tag-new'")).toHaveLength(0);
    // Later, `verify` reads the source as it is now: it moved on since its copy, and verify says so.
    const verify = await runCli(['verify', '-d', db.url, '--dir', dir, '--json']);
    expect(verify.code).toBe(3);
  }, 120_000);

  it('--freeze: writes to the source are refused while it is copied, come back when the run is killed, again during apply, and after', async () => {
    const db = dropLater(await freshDatabase('consolidate', template.name));
    const { dir, gate, before } = await gatedDelta(db.url, '--freeze');
    const run = startCli(['apply', '-d', db.url, '--dir', dir]);
    await gate.reached(run.done);
    await expect(appWrite(db.url)).rejects.toMatchObject({ code: '55P03' });
    // Reads go on, and other schemas are not frozen.
    expect(await query(db.url, 'SELECT count(*) FROM customer_delta.tasks')).toHaveLength(1);
    await query(db.url, 'UPDATE customer_echo.tasks SET done = done WHERE id = 1');

    run.child.kill('SIGKILL');
    await run.done;
    // The freeze is a lock of the run's session: the server ends the session (it checks its client every
    // second, even while it waits at the gate) and the lock with it; nothing is left to undo.
    await until(
      db.url,
      "SELECT (count(*) = 0)::int AS n FROM pg_locks WHERE relation = 'customer_delta.tasks'::regclass AND pid <> pg_backend_pid()",
    );
    await appWrite(db.url);
    await gate.open();
    expect(await query(db.url, 'SELECT FROM public.organizations')).toHaveLength(0);

    const again = await holdGate(db.url);
    const resumed = startCli(['apply', '-d', db.url, '--dir', dir]);
    await again.reached(resumed.done);
    await expect(appWrite(db.url)).rejects.toMatchObject({ code: '55P03' });
    await again.open();
    const applied = await resumed.done;
    expect(applied.code, applied.stderr).toBe(0);
    expect(await tenantContent(db.url, { tenant: 1 })).toEqual(before);
    await appWrite(db.url);
  }, 120_000);

  it('--from-databases: each customer database streamed with COPY and consolidated (--ids remap, --freeze); no password in the plan or the output', async () => {
    const target = dropLater(await freshDatabase('consolidate', template.name));
    const picked = ['alpha', 'bravo', 'hotel'];
    const lines: string[] = ['# one database per customer'];
    for (const name of picked) {
      // A customer's own database: its tables in schema app, the lookup tables in public.
      const source = dropLater(await freshDatabase(`src_${name}`, template.name));
      const others = customers.filter((c) => c !== `customer_${name}`).concat('customer_zeta');
      await query(source.url, `${others.map((c) => `DROP SCHEMA ${c} CASCADE`).join('; ')}; ALTER SCHEMA customer_${name} RENAME TO app`);
      const url = new URL(source.url);
      url.password = 's3cret-pw';
      lines.push(`${name} ${url.toString()}`);
    }
    const root = mkdtempSync(join(tmpdir(), 'consolidate-db-'));
    writeFileSync(join(root, 'sources.txt'), `${lines.join('\n')}\n`);
    const dir = join(root, 'plan');
    // The TypeScript units import tenantify, as from a plan repository that has it installed.
    mkdirSync(join(dir, 'node_modules'), { recursive: true });
    symlinkSync(dirname(dirname(fileURLToPath(import.meta.url))), join(dir, 'node_modules', 'tenantify'));

    const planned = await runCli([
      'tenancy',
      'consolidate',
      '--from-databases',
      join(root, 'sources.txt'),
      '--source-schema',
      'app',
      '--ids',
      'remap',
      '--freeze',
      '-d',
      target.url,
      '--dir',
      dir,
      '--batch-size',
      '1000',
      '--json',
    ]);
    expect(planned.code, planned.stderr).toBe(0);
    expect(JSON.parse(planned.stdout).sources.map((s: { source: string }) => s.source)).toEqual(picked);
    const files = ['migrations', 'backfills', 'rollbacks'].flatMap((sub) =>
      readdirSync(join(dir, sub)).map((f) => readFileSync(join(dir, sub, f), 'utf8')),
    );
    expect(files.some((text) => text.includes('s3cret-pw'))).toBe(false);

    const applied = await runCli(['apply', '-d', target.url, '--dir', dir, '--json']);
    expect(applied.code, applied.stderr).toBe(0);
    expect(`${applied.stdout}${applied.stderr}`).not.toContain('s3cret-pw');
    // Per source: rows per table equal the source database's (its schema is a copy of customer_<name> here), the bytes COPY carried.
    const records = await expectSourceRecords(
      target.url,
      JSON.parse(applied.stdout),
      picked.map((name, i) => ({ source: name, schema: `customer_${name}`, tenantId: i + 1 })),
    );
    for (const record of records) {
      const [staged] = await query<{ bytes: number }>(
        target.url,
        `SELECT bytes::int FROM consolidate_stage_${record.source}.tenantify_staged`,
      );
      expect(record.copyBytes).toBe(staged?.bytes);
    }
    for (const [i, name] of picked.entries()) {
      expect(await tenantContent(target.url, { tenant: i + 1 }), name).toEqual(
        await tenantContent(target.url, { schema: `customer_${name}` }),
      );
    }
    const check = await runCli(['tenancy', 'check', '-d', target.url, '--dir', dir, '--strict', '--json']);
    expect(check.code, check.stdout).toBe(0);

    const bare = await runCli(['rollback', '-d', target.url, '--dir', dir, '--yes']);
    expect(bare.code, bare.stderr).toBe(0);
    const left = await query<{ tenant: number }>(target.url, 'SELECT DISTINCT organization_id::int AS tenant FROM public.tasks ORDER BY 1');
    expect(left.map((r) => r.tenant)).toEqual([1, 2]);
    expect(await query(target.url, "SELECT FROM pg_namespace WHERE nspname = 'consolidate_stage_hotel'")).toHaveLength(0);
  }, 300_000);
});
