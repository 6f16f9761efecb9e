/**
 * tenancy consolidate --citus on a throwaway Citus cluster (a coordinator and two workers):
 * four customer schemas of fixtures/schema-per-customer consolidated into shared tables
 * distributed by the key and colocated with the tenants table (distributed by its id), the lookup tables reference tables;
 * every customer verified, and rollback --all leaves the target as it was.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startThrowawayCitus, type ThrowawayCitus } from '../src/db/throwaway.js';
import { runCli } from './support/cli.js';
import { describeWithCitus } from './support/citus.js';
import { contentFingerprint, query } from './support/db.js';
import { schemaDump } from './support/dump.js';

const fixture = readFileSync(new URL('../fixtures/schema-per-customer/legacy.sql', import.meta.url), 'utf8');
const customers = ['customer_alpha', 'customer_bravo', 'customer_charlie', 'customer_delta'];
const tables = ['tags', 'users', 'projects', 'project_tags', 'tasks'];

describeWithCitus('tenancy consolidate --citus', () => {
  let cluster: ThrowawayCitus;
  beforeAll(async () => {
    cluster = await startThrowawayCitus({ prefer: 'local', workers: 2 });
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it('distributes the shared tables by the key, colocated; every customer verified; check clean; new rows do not collide; rollback removes the newest tenant, rollback --all the rest', async () => {
    const url = await cluster.createDatabase('consolidate_citus');
    await query(url, fixture);
    const dir = join(mkdtempSync(join(tmpdir(), 'consolidate-citus-')), 'plan');
    const before = { schema: schemaDump(url), content: await contentFingerprint(url) };
    const exclude = ['customer_echo', 'customer_foxtrot', 'customer_golf', 'customer_hotel', 'customer_zeta'];
    const args = ['tenancy', 'consolidate', '--from-schemas', 'customer_%', '--exclude', ...exclude, '-d', url, '--dir', dir, '--json'];

    // What --citus cannot place yet is refused before anything is read or written.
    const remap = await runCli([...args, '--citus', '--ids', 'remap']);
    expect(remap.code).toBe(2);
    expect(JSON.parse(remap.stdout).error.code).toBe('consolidate-citus-unsupported');
    expect(existsSync(dir)).toBe(false);
    expect(schemaDump(url)).toBe(before.schema);

    const planned = await runCli([...args, '--citus', '--batch-size', '500']);
    expect(planned.code, planned.stderr).toBe(0);
    expect(JSON.parse(planned.stdout).sources.map((s: { source: string }) => s.source)).toEqual(customers);

    const applied = await runCli(['apply', '-d', url, '--dir', dir, '--json']);
    expect(applied.code, applied.stderr + applied.stdout).toBe(0);

    // The tenants table distributed by id, every shared table by organization_id, all in one colocation group; the lookup tables reference tables.
    const placed = await query<{ name: string; type: string; column: string; colocation: number }>(
      url,
      `SELECT table_name::text AS name, citus_table_type AS type, distribution_column AS column, colocation_id AS colocation
         FROM citus_tables WHERE table_name::text NOT LIKE 'customer%' ORDER BY 1`,
    );
    const distributed = placed.filter((p) => p.type === 'distributed');
    expect(distributed.map((p) => p.name).sort()).toEqual(['organizations', ...tables].sort());
    expect(distributed.map((p) => [p.name, p.column]).sort()).toEqual(
      [['organizations', 'id'], ...tables.map((t) => [t, 'organization_id'])].sort(),
    );
    expect(new Set(distributed.map((p) => p.colocation)).size).toBe(1);
    expect(placed.filter((p) => p.type === 'reference').map((p) => p.name)).toEqual(['countries', 'plans']);

    // Per tenant, per table: the source's rows arrived (the units' verify sections: count and content hash).
    const verified = await runCli(['verify', '-d', url, '--dir', dir, '--json']);
    expect(verified.code, verified.stdout).toBe(0);
    const checks = JSON.parse(verified.stdout).checks as { unit: string; ok: boolean }[];
    expect(checks.filter((c) => c.unit.includes('consolidate_customer_')).length).toBeGreaterThanOrEqual(customers.length * tables.length);
    expect(checks.every((c) => c.ok)).toBe(true);
    for (const [i, schema] of customers.entries()) {
      const [row] = await query<{ source: number; target: number }>(
        url,
        `SELECT (SELECT count(*)::int FROM ${schema}.tasks) AS source, (SELECT count(*)::int FROM public.tasks WHERE organization_id = ${i + 1}) AS target`,
      );
      expect(row?.target, schema).toBe(row?.source);
    }
    // tenancy check on the cluster: the key everywhere, the tenants table distributed by its id, no finding.
    const cross = await runCli(['tenancy', 'check', '-d', url, '--dir', dir, '--json']);
    expect(cross.code, cross.stdout).toBe(0);

    // The application's next row takes an id past every source's (the sequence set on the coordinator), on tenant 3's shard.
    const [source] = await query<{ max: number }>(url, 'SELECT max(id)::int AS max FROM customer_charlie.users');
    const [inserted] = await query<{ id: number }>(
      url,
      "INSERT INTO public.users (organization_id, email, name) VALUES (3, 'new@customer_charlie.example', 'Neu') RETURNING id",
    );
    expect(inserted?.id).toBeGreaterThan(source?.max ?? Infinity);
    await query(url, "DELETE FROM public.users WHERE email = 'new@customer_charlie.example'");

    // A bare rollback removes the newest tenant exactly, from every shard.
    const bare = await runCli(['rollback', '-d', url, '--dir', dir, '--yes']);
    expect(bare.code, bare.stderr).toBe(0);
    const left = await query<{ tenant: number }>(url, 'SELECT DISTINCT organization_id::int AS tenant FROM public.tasks ORDER BY 1');
    expect(left.map((r) => r.tenant)).toEqual([1, 2, 3]);

    const all = await runCli(['rollback', '--all', '-d', url, '--dir', dir, '--yes', '--json']);
    expect(all.code, all.stderr + all.stdout).toBe(0);
    expect(await query(url, "SELECT logicalrelid FROM pg_dist_partition WHERE logicalrelid::text NOT LIKE 'tenantify.%'")).toEqual([]);
    expect(schemaDump(url)).toBe(before.schema);
    expect(await contentFingerprint(url)).toEqual(before.content);
  }, 180_000);
});
