/**
 * The legacy-rental fixture end to end (TENANCY.md, "Real legacy schemas"): a partitioned
 * payment table whose foreign keys live on two of its three partitions, a log without a
 * primary key, last_update and audit triggers on every table, views over tenant tables (one
 * over another) and a materialized view owned by the superuser, an enum and a domain.
 * analyze → scaffold --composite --rls → apply → the app role reads one tenant through every
 * view → tenancy check → rollback --all.
 */
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { differences } from '../src/db/compare.js';
import { databaseState as state } from './support/state.js';
import { runCli, startCli } from './support/cli.js';
import { contentFingerprint, dropAfterAll, fixtureTemplate, freshDatabase, query } from './support/db.js';

const fixture = 'fixtures/legacy-rental/legacy.sql';
const views = ['customer_list', 'staff_list', 'customer_rentals', 'sales_by_staff'];

function planDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'legacy-rental-'));
  copyFileSync('fixtures/legacy-rental/scaffold.config.json', join(dir, 'tenantify.config.json'));
  return dir;
}

async function scaffold(url: string, dir: string): Promise<void> {
  const result = await runCli(['tenancy', 'scaffold', '-d', url, '--dir', dir, '--composite', '--rls', '--json']);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
}

async function apply(url: string, dir: string): Promise<void> {
  const result = await runCli(['apply', '-d', url, '--dir', dir, '--json']);
  expect(result.code, result.stderr).toBe(0);
}

/**
 * `tenantify apply` while the legacy app inserts rentals, their payments and log rows, store
 * after store, until the run ends. Each write is its own transaction: one that writes rental
 * then payment can deadlock with a unit that locks payment then rental (a composite foreign
 * key) while units wait 2s for a lock, longer than deadlock_timeout; the short lock timeout
 * is legacy-order's (issue 25 item 6).
 */
async function applyWhileAppWrites(url: string, dir: string): Promise<{ writes: number; errors: string[] }> {
  const app = new pg.Client({ connectionString: url });
  await app.connect();
  const run = startCli(['apply', '-d', url, '--dir', dir, '--json']);
  let finished = false;
  let writes = 0;
  const errors: string[] = [];
  void run.done.then(() => (finished = true));
  try {
    for (let i = 1; !finished; i++) {
      const store = 1 + (i % 2);
      try {
        const { rows } = await app.query<{ id: number }>(
          `INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) VALUES (timestamptz '2022-03-15 12:00+00', $1, $2, $3) RETURNING rental_id AS id`,
          [store, store, store],
        );
        const rental = rows[0]?.id;
        await app.query(
          `INSERT INTO payment (customer_id, staff_id, rental_id, amount, payment_date) VALUES ($1, $1, $2, 1.99, timestamptz '2022-02-15 12:00+00')`,
          [store, rental],
        );
        await app.query(`INSERT INTO rental_log (rental_id, event, at) VALUES ($1, 'rented', now())`, [rental]);
        writes++;
      } catch (error) {
        errors.push((error as Error).message);
      }
      // An app's pace, not a benchmark's: the run's own locks must not wait behind a flood.
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  } finally {
    await app.end();
  }
  const result = await run.done;
  expect(result.code, result.stderr).toBe(0);
  return { writes, errors };
}

describe('legacy-rental', () => {
  const dropped = dropAfterAll();
  let template: string;

  beforeAll(async () => {
    template = dropped(await fixtureTemplate(fixture, 'tplrent')).name;
  });

  it('analyze: the partitioned payment is a tenant table with its partitions, no hint names a primary key or a text id, the views are listed', async () => {
    const db = dropped(await freshDatabase('rentan', template));
    const result = await runCli(['tenancy', 'analyze', '-d', db.url, '--dir', planDir(), '--json']);
    expect(result.code, result.stderr).toBe(0);
    const doc = JSON.parse(result.stdout) as {
      tables: { table: string; role: string; partitions?: string[]; unresolved?: number; via?: { columns: string[] }[] }[];
      views: { view: string; kind: string; tenantTables: string[] }[];
      hints: { table: string; column?: string; hint: string }[];
    };
    const payment = doc.tables.find((t) => t.table === 'public.payment');
    expect(payment?.role).toBe('tenant');
    expect(payment?.partitions).toEqual(['public.payment_p2022_01', 'public.payment_p2022_02', 'public.payment_p2022_03']);
    expect(payment?.unresolved).toBe(0);
    expect(doc.tables.find((t) => t.table === 'public.rental_log')?.role).toBe('tenant');
    const primaryKeys = await query<{ name: string }>(
      db.url,
      `SELECT format('%s.%s', c.conrelid::regclass, a.attname) AS name FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) WHERE c.contype = 'p'`,
    );
    const hinted = doc.hints.filter((h) => h.column).map((h) => `${h.table.replace('public.', '')}.${h.column}`);
    for (const { name } of primaryKeys) expect(hinted).not.toContain(name);
    expect(hinted).not.toContain('customer.loyalty_card_id');
    expect(doc.hints.some((h) => h.hint.includes('NOT VALID first'))).toBe(false);
    expect(doc.views.map((v) => `${v.view}:${v.kind}`)).toEqual([
      'public.customer_list:view',
      'public.customer_rentals:view',
      'public.sales_by_staff:view',
      'public.staff_list:view',
      'public.store_revenue:materialized',
    ]);
  });

  it('scaffold --composite --rls, apply while the app writes: the app role reads one tenant through every view; check passes; rollback --all returns the schema and the legacy rows', async () => {
    const db = dropped(await freshDatabase('rent', template));
    const before = await state(db.url);
    const rowsBefore = await contentFingerprint(db.url);
    const dir = planDir();
    await scaffold(db.url, dir);
    const { writes, errors } = await applyWhileAppWrites(db.url, dir);
    expect(errors).toEqual([]);
    expect(writes).toBeGreaterThan(0);
    // Every row has its key: the backfills' and the trigger's for the rows the app wrote meanwhile.
    for (const table of ['rental', 'payment', 'rental_log', 'customer', 'staff', 'inventory']) {
      const [row] = await query<{ n: number }>(db.url, `SELECT count(*)::int AS n FROM ${table} WHERE organization_id IS NULL`);
      expect(row?.n, table).toBe(0);
    }

    const role = `rent_app_${process.pid}_${Date.now()}`;
    await query(
      db.url,
      // The materialized view holds every tenant's rows whatever the policies: as the plan's
      // views unit says, the app role must not read it (tenancy check finds it otherwise).
      `CREATE ROLE ${role}; GRANT USAGE ON SCHEMA public TO ${role}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}; REVOKE SELECT ON public.store_revenue FROM ${role}`,
    );
    try {
      const [org] = await query<{ id: string }>(db.url, 'SELECT id::text FROM organizations WHERE legacy_stores_id = 1');
      const store1 = async (sql: string): Promise<number[]> => (await query<{ n: number }>(db.url, sql)).map((r) => Number(r.n));
      const seen = async (view: string, column: string): Promise<number[]> => {
        const client = new pg.Client({ connectionString: db.url });
        await client.connect();
        try {
          await client.query('BEGIN');
          await client.query(`SET LOCAL ROLE ${role}`);
          await client.query(`SELECT set_config('app.tenant_id', $1, true)`, [org?.id]);
          const { rows } = await client.query<{ v: number }>(`SELECT ${column} AS v FROM ${view} ORDER BY 1`);
          await client.query('ROLLBACK');
          return rows.map((r) => Number(r.v));
        } finally {
          await client.end();
        }
      };
      expect(await seen('customer_list', 'id')).toEqual(
        await store1('SELECT customer_id AS n FROM customer WHERE store_id = 1 ORDER BY 1'),
      );
      expect(await seen('staff_list', 'id')).toEqual(await store1('SELECT staff_id AS n FROM staff WHERE store_id = 1 ORDER BY 1'));
      expect(await seen('customer_rentals', 'customer_id')).toEqual(
        await store1('SELECT customer_id AS n FROM customer WHERE store_id = 1 ORDER BY 1'),
      );
      expect(await seen('sales_by_staff', 'staff_id')).toEqual(
        await store1('SELECT staff_id AS n FROM staff WHERE store_id = 1 ORDER BY 1'),
      );
      // Every view is security_invoker now; before the plan it ran as the superuser and showed both stores.
      const invoker = await query<{ relname: string }>(
        db.url,
        `SELECT relname FROM pg_class WHERE relname = ANY($1) AND 'security_invoker=on' = ANY (reloptions) ORDER BY 1`,
        [views],
      );
      expect(invoker.map((r) => r.relname)).toEqual([...views].sort());
      // The control: run as its owner again, the view shows the other store's customers too.
      await query(db.url, 'ALTER VIEW customer_list RESET (security_invoker)');
      expect((await seen('customer_list', 'id')).length).toBe(40);
      await query(db.url, 'ALTER VIEW customer_list SET (security_invoker = on)');

      const check = await runCli(['tenancy', 'check', '-d', db.url, '--dir', dir, '--json']);
      expect(check.code, check.stdout + check.stderr).toBe(0);
    } finally {
      await query(db.url, `DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }

    const rollback = await runCli(['rollback', '-d', db.url, '--dir', dir, '--all', '--yes', '--json']);
    expect(rollback.code, rollback.stderr).toBe(0);
    // The rows the app wrote during the apply are the app's: gone, the legacy rows are compared.
    await query(
      db.url,
      'DELETE FROM rental_log WHERE rental_id > 600; DELETE FROM payment WHERE payment_id > 600; DELETE FROM rental WHERE rental_id > 600',
    );
    const after = await state(db.url);
    expect(
      differences(
        { ...before, content: new Map(), rows: new Map(), columns: new Map() },
        { ...after, content: new Map(), rows: new Map(), columns: new Map() },
      ),
    ).toEqual([]);
    // Every legacy row is back (timestamps aside: the app's last_update trigger, and the audit rows it writes, are legacy-order's).
    const rowsAfter = await contentFingerprint(db.url);
    delete rowsBefore['public.audit_log'];
    delete rowsAfter['public.audit_log'];
    expect(rowsAfter).toEqual(rowsBefore);
  });

  // Depends on legacy-order (issue 25 item 1): the scaffolded backfills must not fire the app's triggers.
  it('the upgrade changes no legacy column of a legacy row and writes no audit row; rollback --all returns the exact content', async () => {
    const db = dropped(await freshDatabase('rentx', template));
    const before = await state(db.url);
    const dir = planDir();
    await scaffold(db.url, dir);
    const [audit] = await query<{ n: number }>(db.url, 'SELECT count(*)::int AS n FROM audit_log');
    await apply(db.url, dir);
    const [afterApply] = await query<{ n: number }>(db.url, 'SELECT count(*)::int AS n FROM audit_log');
    expect(afterApply?.n).toBe(audit?.n);
    const [stamped] = await query<{ n: number }>(
      db.url,
      `SELECT count(*)::int AS n FROM rental WHERE last_update <> timestamptz '2022-01-01 00:00:00+00'`,
    );
    expect(stamped?.n).toBe(0);
    const rollback = await runCli(['rollback', '-d', db.url, '--dir', dir, '--all', '--yes', '--json']);
    expect(rollback.code, rollback.stderr).toBe(0);
    expect(differences(before, await state(db.url))).toEqual([]);
  });
});
