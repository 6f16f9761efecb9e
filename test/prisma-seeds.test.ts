/**
 * The two seed plans whose apps are Prisma apps (seed 000, fixtures/hosts-to-organizations:
 * `prisma migrate dev`; seed 004, fixtures/organization-modules: Better Auth's Prisma models,
 * `prisma migrate resolve --rolled-back`). Each fixture's prisma/ folder is what the team
 * would hold: schema.prisma as `prisma db pull` wrote it from legacy.sql (fields named as
 * their columns), and a baseline migration `0_init` (pg_dump -s of legacy.sql) marked
 * applied with `prisma migrate resolve --applied`. Then `tenancy scaffold --prisma` with the
 * fixture's tenancy model, `apply`, and real Prisma judges the result as for
 * fixtures/prisma-app (test/prisma-app.test.ts); `rollback --all` restores everything.
 * Prisma judges the schema, not the data: hosts-to-organizations is loaded at a tenth of its
 * size (smallHostsSeed, the same schema), and the plans run without the throttle's pauses
 * (nothing here is about yielding to an app).
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { contentFingerprint, dropAfterAll, freshDatabase, query } from './support/db.js';
import { schemaDump } from './support/dump.js';
import { smallHostsSeed } from './support/fixtures.js';
import { dbPull, migrateDeploy, migrateDiff, migrateResolveApplied, migrateStatus } from './support/prisma.js';

async function prismaHistory(url: string): Promise<string[]> {
  const rows = await query<{ row: string }>(url, 'SELECT to_jsonb(m)::text AS row FROM _prisma_migrations m ORDER BY migration_name');
  return rows.map((r) => r.row);
}

describe.each(['hosts-to-organizations', 'organization-modules'])('the Prisma seed %s', (name) => {
  const dropped = dropAfterAll();

  it('scaffold --prisma + apply: Prisma agrees with the upgraded database; rollback --all restores it', async () => {
    // Loaded straight into the one database that needs it: a template copied once is a copy more.
    const db = dropped(await freshDatabase('prseed'));
    await query(db.url, readFileSync(name === 'hosts-to-organizations' ? smallHostsSeed() : `fixtures/${name}/legacy.sql`, 'utf8'));
    const dir = mkdtempSync(join(tmpdir(), `prisma-${name}-`));
    cpSync(`fixtures/${name}/prisma`, dir, { recursive: true });
    const app = { dir, url: db.url };
    await migrateResolveApplied(app, '0_init');
    const before = { schema: schemaDump(db.url), history: await prismaHistory(db.url), content: await contentFingerprint(db.url) };

    const plan = mkdtempSync(join(tmpdir(), `prisma-${name}-plan-`));
    const config = JSON.parse(readFileSync(`fixtures/${name}/scaffold.config.json`, 'utf8')) as Record<string, unknown>;
    writeFileSync(join(plan, 'tenantify.config.json'), JSON.stringify({ ...config, batch: { throttle: 'off' } }));
    const scaffold = await runCli(['tenancy', 'scaffold', '-d', db.url, '--dir', plan, '--prisma', dir]);
    expect(scaffold.code, scaffold.stderr).toBe(0);
    // No snapshots: the rollback below reverts with the plan's rollback files, and what it restores is what is compared.
    const apply = await runCli(['apply', '-d', db.url, '--dir', plan, '--no-snapshot']);
    expect(apply.code, apply.stderr).toBe(0);

    const fresh = dropped(await freshDatabase('prseedfresh'));
    // The diffs load schema.prisma through Prisma's validator: their exit 0 is also `prisma validate`'s (one CLI start less).
    const [status, fromMigrations, pulled] = await Promise.all([
      migrateStatus(app),
      migrateDiff(app, ['--from-migrations', join(dir, 'migrations')], ['--to-schema-datamodel', join(dir, 'schema.prisma')]),
      dbPull(app),
      migrateDeploy({ dir, url: fresh.url }),
    ]);
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(status.stdout).toContain('Database schema is up to date');
    expect(fromMigrations.code, fromMigrations.stdout + fromMigrations.stderr).toBe(0);
    expect(schemaDump(fresh.url)).toBe(schemaDump(db.url));
    const pulledDir = mkdtempSync(join(tmpdir(), 'prisma-pulled-'));
    writeFileSync(join(pulledDir, 'schema.prisma'), pulled);
    const fromPulled = await migrateDiff(
      app,
      ['--from-schema-datamodel', join(pulledDir, 'schema.prisma')],
      ['--to-schema-datamodel', join(dir, 'schema.prisma')],
    );
    expect(fromPulled.code, fromPulled.stdout + fromPulled.stderr).toBe(0);

    const rollback = await runCli(['rollback', '-d', db.url, '--dir', plan, '--all', '--yes']);
    expect(rollback.code, rollback.stderr).toBe(0);
    expect(await prismaHistory(db.url)).toEqual(before.history);
    expect(schemaDump(db.url)).toBe(before.schema);
    expect(await contentFingerprint(db.url)).toEqual(before.content);
  }, 400_000); // six Prisma CLI starts of several seconds each, two of them after a whole apply of the seed's data
});
