/**
 * A Prisma-managed legacy app (fixtures/prisma-app: PascalCase models, camelCase fields
 * `@map`ped, an `@@index`, a unique, relations, data), built by `prisma migrate deploy` as
 * its team builds it, then `tenancy scaffold --composite --prisma` and `apply` (the seeds,
 * test/prisma-seeds.test.ts, take the plain plan). Real Prisma (6.19, its
 * WebAssembly schema engine, test/support/prisma.ts) judges the result: the schema is
 * valid, the history up to date, the migrations build exactly schema.prisma, schema.prisma
 * is what `db pull` reads from the upgraded database, and a fresh database built by
 * `prisma migrate deploy` alone has the upgraded database's schema. `rollback --all` then
 * leaves the database as before, `_prisma_migrations` included.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { contentFingerprint, dropAfterAll, freshDatabase, query } from './support/db.js';
import { schemaDump } from './support/dump.js';
import { dbPull, migrateDeploy, migrateDiff, migrateStatus, type PrismaProject } from './support/prisma.js';

const fixture = 'fixtures/prisma-app';

/** Every row of `_prisma_migrations`, every column, in a stable order. */
async function prismaHistory(url: string): Promise<string[]> {
  const rows = await query<{ row: string }>(url, 'SELECT to_jsonb(m)::text AS row FROM _prisma_migrations m ORDER BY migration_name');
  return rows.map((r) => r.row);
}

describe('a Prisma app: tenancy scaffold --prisma, apply, rollback', () => {
  const dropped = dropAfterAll();
  let app: PrismaProject;
  let planDir: string;
  let before: { schema: string; history: string[]; content: Record<string, string> };
  let original: string;
  let scaffoldOut: { prisma: string[]; files: { unit: string }[] };

  beforeAll(async () => {
    const db = dropped(await freshDatabase('prisma'));
    const dir = mkdtempSync(join(tmpdir(), 'prisma-app-'));
    cpSync(join(fixture, 'prisma'), dir, { recursive: true });
    app = { dir, url: db.url };
    await migrateDeploy(app);
    await query(db.url, readFileSync(join(fixture, 'data.sql'), 'utf8'));
    before = { schema: schemaDump(db.url), history: await prismaHistory(db.url), content: await contentFingerprint(db.url) };
    original = readFileSync(join(dir, 'schema.prisma'), 'utf8');

    planDir = mkdtempSync(join(tmpdir(), 'prisma-plan-'));
    writeFileSync(join(planDir, 'tenantify.config.json'), `${JSON.stringify({ tenancy: { owner: 'users' } }, null, 2)}\n`);
    const scaffold = await runCli(['tenancy', 'scaffold', '-d', db.url, '--dir', planDir, '--composite', '--prisma', dir, '--json']);
    expect(scaffold.code, scaffold.stderr).toBe(0);
    scaffoldOut = JSON.parse(scaffold.stdout) as typeof scaffoldOut;
    const apply = await runCli(['apply', '-d', db.url, '--dir', planDir]);
    expect(apply.code, apply.stderr).toBe(0);
  }, 300_000);

  it('edits schema.prisma in place: the key fields, relations and indexes added, every other line as it was', () => {
    const schema = readFileSync(join(app.dir, 'schema.prisma'), 'utf8');
    const migration = readdirSync(join(app.dir, 'migrations')).filter((f) => /^\d{14}_tenantify_organizations$/.test(f));
    expect(migration).toHaveLength(1);
    expect(scaffoldOut.prisma).toEqual([
      join(app.dir, 'migrations', migration[0] as string, 'migration.sql'),
      join(app.dir, 'schema.prisma'),
    ]);
    expect(scaffoldOut.files.at(-1)?.unit).toMatch(/_prisma_record_migration$/);
    // Outside the models (comments, generator, datasource) nothing changed.
    const head = original.slice(0, original.indexOf('model User'));
    expect(schema.startsWith(head)).toBe(true);
    expect(schema).toMatch(/^ {2}organizationId +BigInt +@map\("organization_id"\)$/m);
    expect(schema).toMatch(/^model Organization \{$/m);
    expect(schema).toContain('@@map("organizations")');
    expect(schema.match(/@@index\(\[organizationId\]\)/g)).toHaveLength(3);
    // --composite: unique (key, id) on the referenced models, the tenant-wide foreign keys as named relations.
    expect(schema.match(/@@unique\(\[organizationId, id\]\)/g)).toHaveLength(2);
    expect(schema).toMatch(/@relation\("TaskProjectTenant", fields: \[organizationId, projectId\], references: \[organizationId, id\]/);
    expect(schema).toMatch(/^ {2}doneAt +DateTime\? +@map\("done_at"\) \/\/ still open while NULL$/m);
  });

  it('satisfies Prisma: valid, up to date, migrations = schema.prisma = db pull', async () => {
    const pulledDir = mkdtempSync(join(tmpdir(), 'prisma-pulled-'));
    // The diffs load schema.prisma through Prisma's validator: their exit 0 is also `prisma validate`'s (one CLI start less).
    const [status, fromMigrations, pulled] = await Promise.all([
      migrateStatus(app),
      migrateDiff(app, ['--from-migrations', join(app.dir, 'migrations')], ['--to-schema-datamodel', join(app.dir, 'schema.prisma')]),
      dbPull(app),
    ]);
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(status.stdout).toContain('Database schema is up to date');
    expect(fromMigrations.code, fromMigrations.stdout + fromMigrations.stderr).toBe(0);
    writeFileSync(join(pulledDir, 'schema.prisma'), pulled);
    const fromPulled = await migrateDiff(
      app,
      ['--from-schema-datamodel', join(pulledDir, 'schema.prisma')],
      ['--to-schema-datamodel', join(app.dir, 'schema.prisma')],
    );
    expect(fromPulled.code, fromPulled.stdout + fromPulled.stderr).toBe(0);
  }, 300_000); // four Prisma CLI starts, three at once

  it('builds the same schema in a fresh database with prisma migrate deploy alone', async () => {
    const fresh = dropped(await freshDatabase('prismafresh'));
    await migrateDeploy({ dir: app.dir, url: fresh.url });
    expect(schemaDump(fresh.url)).toBe(schemaDump(app.url));
    const names = await query<{ migration_name: string }>(fresh.url, 'SELECT migration_name FROM _prisma_migrations ORDER BY 1');
    expect(names.map((n) => n.migration_name)).toEqual((await prismaHistory(app.url)).map((r) => JSON.parse(r).migration_name));
  });

  it('rollback --all leaves the database as before, _prisma_migrations included', async () => {
    const recorded = await prismaHistory(app.url);
    expect(recorded).toHaveLength(before.history.length + 1);
    const rollback = await runCli(['rollback', '-d', app.url, '--dir', planDir, '--all', '--yes']);
    expect(rollback.code, rollback.stderr).toBe(0);
    expect(await prismaHistory(app.url)).toEqual(before.history);
    expect(schemaDump(app.url)).toBe(before.schema);
    expect(await contentFingerprint(app.url)).toEqual(before.content);

    // Scaffolding again finds its units and its migration: the plan and the Prisma folder stay as they are.
    const schema = readFileSync(join(app.dir, 'schema.prisma'), 'utf8');
    const migrations = readdirSync(join(app.dir, 'migrations'));
    const again = await runCli(['tenancy', 'scaffold', '-d', app.url, '--dir', planDir, '--composite', '--prisma', app.dir, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ files: [], prisma: [] });
    expect(readFileSync(join(app.dir, 'schema.prisma'), 'utf8')).toBe(schema);
    expect(readdirSync(join(app.dir, 'migrations'))).toEqual(migrations);
  });
});

describe('tenancy scaffold --prisma refuses a folder it cannot use', () => {
  const dropped = dropAfterAll();

  it.each([
    ['prisma-schema-missing', undefined],
    ['prisma-schema-invalid', 'model User {\n  id Int @id\n  team Team\n}\n'],
  ])('%s: exit 2, nothing written, the database untouched', async (code, schema) => {
    const db = dropped(await freshDatabase('prismabad'));
    await query(
      db.url,
      'CREATE TABLE users (id serial PRIMARY KEY, email text); CREATE TABLE notes (id serial PRIMARY KEY, user_id int REFERENCES users)',
    );
    const dump = schemaDump(db.url);
    const prismaDir = mkdtempSync(join(tmpdir(), 'prisma-bad-'));
    if (schema) writeFileSync(join(prismaDir, 'schema.prisma'), schema);
    const planDir = mkdtempSync(join(tmpdir(), 'prisma-bad-plan-'));
    writeFileSync(join(planDir, 'tenantify.config.json'), `${JSON.stringify({ tenancy: { owner: 'users' } })}\n`);

    const r = await runCli(['tenancy', 'scaffold', '-d', db.url, '--dir', planDir, '--prisma', prismaDir, '--json']);
    expect(r.code).toBe(2);
    const { error } = JSON.parse(r.stdout) as { error: { code: string; exitCode: number } };
    expect(error).toMatchObject({ code, exitCode: 2 });
    expect(existsSync(join(planDir, 'migrations'))).toBe(false);
    expect(readdirSync(prismaDir)).toEqual(schema ? ['schema.prisma'] : []);
    if (schema) expect(readFileSync(join(prismaDir, 'schema.prisma'), 'utf8')).toBe(schema);
    expect(schemaDump(db.url)).toBe(dump);
  });
});

describe('tenancy scaffold --prisma on a database never deployed with prisma migrate', () => {
  const dropped = dropAfterAll();

  it('writes the schema and the migration, and no unit that records it (there is no _prisma_migrations)', async () => {
    const db = dropped(await freshDatabase('prismanohist'));
    await query(db.url, readFileSync(join(fixture, 'prisma/migrations/20250301090000_init/migration.sql'), 'utf8'));
    const dir = mkdtempSync(join(tmpdir(), 'prisma-nohist-'));
    cpSync(join(fixture, 'prisma'), dir, { recursive: true });
    const planDir = mkdtempSync(join(tmpdir(), 'prisma-nohist-plan-'));
    writeFileSync(join(planDir, 'tenantify.config.json'), `${JSON.stringify({ tenancy: { owner: 'users' } })}\n`);
    const r = await runCli(['tenancy', 'scaffold', '-d', db.url, '--dir', planDir, '--prisma', dir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { files: { unit: string }[]; prisma: string[] };
    expect(out.prisma).toHaveLength(2);
    expect(out.files.some((f) => f.unit.endsWith('_prisma_record_migration'))).toBe(false);
    expect(r.stderr).toContain('_prisma_migrations');
  });
});
