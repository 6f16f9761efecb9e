/**
 * A legacy schema nobody here wrote: pagila (fixtures/pagila, its pg_dump schema with
 * generated data), the PostgreSQL port of sakila. Stores become tenants. What it brings
 * that our own fixtures do not: 55 monthly payment partitions, foreign keys on six of them
 * only, a store whose manager column references staff without a foreign key, generated and
 * full-text columns filled by triggers, five views and a materialized view over tenant
 * tables, and SECURITY DEFINER functions with dynamic SQL.
 * analyze → scaffold --composite --rls → apply while the app rents and takes payments →
 * tenancy check --as the app role finds exactly pagila's two real leaks, and passes once
 * they are closed → rollback --all returns the schema and the legacy rows.
 */
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { differences, type DatabaseState } from '../src/db/compare.js';
import { databaseState as state } from './support/state.js';
import { runCli, startCli } from './support/cli.js';
import { contentFingerprint, dropAfterAll, fixtureTemplate, freshDatabase, query } from './support/db.js';

/** The app: a rental and its payment, a customer, copy and staff member of one store each time, until the apply ends. */
async function applyWhileAppRents(url: string, dir: string): Promise<{ writes: number; errors: string[] }> {
  const app = new pg.Client({ connectionString: url });
  await app.connect();
  // No snapshots: the scaffold's rollbacks are what rollback --all runs here (snapshots are the reference plan's tests').
  const run = startCli(['apply', '-d', url, '--dir', dir, '--json', '--no-snapshot']);
  let finished = false;
  let writes = 0;
  const errors: string[] = [];
  void run.done.then(() => (finished = true));
  try {
    for (let i = 1; !finished; i++) {
      // The fixture's rule: customer c, copy i and staff member s belong to store 1 + n % 2.
      const customer = 1 + (i % 200);
      try {
        const { rows } = await app.query<{ id: number }>(
          `INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id)
           VALUES (timestamptz '2022-03-10 12:00+00' + $4 * interval '1 minute', $1, $2, $3) RETURNING rental_id AS id`,
          [2 * (1 + (i % 300)) - (customer % 2), customer, 2 * (1 + (i % 2)) - (customer % 2), i],
        );
        await app.query(
          `INSERT INTO payment (customer_id, staff_id, rental_id, amount, payment_date) VALUES ($1, $2, $3, 1.99, timestamptz '2022-03-15 12:00+00')`,
          [customer, 2 - (customer % 2), rows[0]?.id],
        );
        writes++;
      } catch (error) {
        errors.push((error as Error).message);
      }
      // An app's pace, not a benchmark's.
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  } finally {
    await app.end();
  }
  const result = await run.done;
  expect(result.code, result.stderr).toBe(0);
  return { writes, errors };
}

describe('pagila, a public legacy schema', () => {
  const dropped = dropAfterAll();

  it('analyze, scaffold --composite --rls, apply while the app rents; check --as finds its two real leaks; rollback --all returns it', async () => {
    const template = dropped(await fixtureTemplate('fixtures/pagila/legacy.sql', 'tplpagila'));
    const db = dropped(await freshDatabase('pagila', template.name));
    const dir = mkdtempSync(join(tmpdir(), 'pagila-'));
    copyFileSync('fixtures/pagila/scaffold.config.json', join(dir, 'tenantify.config.json'));

    const analyze = await runCli(['tenancy', 'analyze', '-d', db.url, '--dir', dir, '--json']);
    expect(analyze.code, analyze.stderr).toBe(0);
    const doc = JSON.parse(analyze.stdout) as {
      tables: { table: string; role: string; partitions?: string[]; unresolved?: number }[];
      views: { view: string; kind: string }[];
      hints: { table: string; column?: string }[];
    };
    const tenant = doc.tables.filter((t) => t.role === 'tenant');
    expect(tenant.map((t) => t.table).sort()).toEqual([
      'public.customer',
      'public.inventory',
      'public.payment',
      'public.rental',
      'public.staff',
    ]);
    expect(tenant.every((t) => t.unresolved === 0)).toBe(true);
    const [partitions] = await query<{ n: number }>(
      db.url,
      "SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'payment'::regclass",
    );
    expect(doc.tables.find((t) => t.table === 'public.payment')?.partitions).toHaveLength(partitions?.n ?? -1);
    expect(doc.hints.map((h) => `${h.table}.${h.column}`)).toContain('public.store.manager_staff_id');
    expect(doc.views.filter((v) => v.kind === 'materialized').map((v) => v.view)).toEqual(['public.rental_by_category']);

    const before = await state(db.url);
    const rowsBefore = await contentFingerprint(db.url);
    const scaffold = await runCli(['tenancy', 'scaffold', '-d', db.url, '--dir', dir, '--composite', '--rls', '--json']);
    expect(scaffold.code, scaffold.stderr).toBe(0);
    const { writes, errors } = await applyWhileAppRents(db.url, dir);
    expect(errors).toEqual([]);
    expect(writes).toBeGreaterThan(0);
    for (const table of ['customer', 'inventory', 'staff', 'rental', 'payment']) {
      const [row] = await query<{ n: number }>(db.url, `SELECT count(*)::int AS n FROM ${table} WHERE organization_id IS NULL`);
      expect(row?.n, table).toBe(0);
    }

    // The app role as pagila's grants leave it: SELECT on every table, EXECUTE on every function (PUBLIC's).
    const role = `pagila_app_${process.pid}_${Date.now()}`;
    await query(
      db.url,
      `CREATE ROLE ${role}; GRANT USAGE ON SCHEMA public TO ${role}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`,
    );
    try {
      const leaky = await runCli(['tenancy', 'check', '-d', db.url, '--dir', dir, '--as', role, '--json']);
      expect(leaky.code).toBe(3);
      const found = (JSON.parse(leaky.stdout) as { findings: { rule: string; table: string }[] }).findings;
      expect(found.map((f) => `${f.rule} ${f.table.replace(/\(.*/, '')}`).sort()).toEqual([
        'materialized-view-exposes-tenants public.rental_by_category',
        'security-definer-reads-tenants public.rewards_report',
      ]);
      // Closed as the findings' fixes say: the copy of every tenant's rows unreadable, the definer function not executable.
      await query(
        db.url,
        `REVOKE SELECT ON rental_by_category FROM ${role}; REVOKE EXECUTE ON FUNCTION rewards_report(integer, numeric) FROM PUBLIC`,
      );
      const isolated = await runCli(['tenancy', 'check', '-d', db.url, '--dir', dir, '--as', role, '--json']);
      expect(isolated.code, isolated.stdout).toBe(0);
      await query(db.url, `GRANT EXECUTE ON FUNCTION rewards_report(integer, numeric) TO PUBLIC`);
    } finally {
      await query(db.url, `DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }

    const rollback = await runCli(['rollback', '-d', db.url, '--dir', dir, '--all', '--yes', '--json']);
    expect(rollback.code, rollback.stderr).toBe(0);
    // The rows the app wrote are the app's: gone, the legacy rows are compared.
    await query(db.url, 'DELETE FROM payment WHERE rental_id > 2000; DELETE FROM rental WHERE rental_id > 2000');
    const after = await state(db.url);
    const shape = (s: DatabaseState): DatabaseState => ({ ...s, content: new Map(), rows: new Map(), columns: new Map() });
    expect(differences(shape(before), shape(after))).toEqual([]);
    expect(await contentFingerprint(db.url)).toEqual(rowsBefore);
  });
});
