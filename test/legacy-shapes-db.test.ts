/**
 * Legacy shapes against a real PostgreSQL: batches over physical ranges of a table without a
 * primary key (resumable, every row changed once), the paths analyze chooses by their
 * conflicting rows, and the comparison that names the columns that differ.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeDatabase, differences } from '../src/db/compare.js';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query, withClient } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

describe('batch key=ctid: physical ranges of a table without a primary key', () => {
  const keep = dropAfterAll();

  it('walks every block in batches, resumes after a failed batch, and changes every row exactly once', async () => {
    const db = keep(await freshDatabase('blocks'));
    await query(
      db.url,
      `CREATE TABLE events (v int NOT NULL, k int);
       INSERT INTO events (v) SELECT g FROM generate_series(1, 5000) g;
       ANALYZE events;
       CREATE TABLE touched (v int NOT NULL);
       CREATE TABLE stop_at (v int);
       INSERT INTO stop_at VALUES (3500);
       CREATE FUNCTION count_touch() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF EXISTS (SELECT FROM stop_at WHERE v = NEW.v) THEN RAISE EXCEPTION 'stopped at %', NEW.v; END IF;
         INSERT INTO touched VALUES (NEW.v);
         RETURN NEW;
       END $$;
       CREATE TRIGGER count_touch BEFORE UPDATE ON events FOR EACH ROW EXECUTE FUNCTION count_touch();`,
    );
    const dir = writePlan({
      'backfills/0001_events_k.sql': [
        '-- tenantify:batch public.events key=ctid size=400',
        'UPDATE public.events AS t SET k = t.v * 2',
        " WHERE t.ctid >= format('(%s,0)', $1::bigint + 1)::tid AND t.ctid < format('(%s,0)', $2::bigint + 1)::tid",
        '   AND t.k IS NULL;',
        '',
      ].join('\n'),
    });
    const first = await runCli(['apply', '-d', db.url, '--dir', dir, '--json', '--parallel', '1']);
    expect(first.code).toBe(1);
    expect((JSON.parse(first.stdout) as { error: { code: string } }).error.code).toBe('unit-failed');
    const [partial] = await query<{ done: number }>(db.url, 'SELECT count(*)::int AS done FROM events WHERE k IS NOT NULL');
    expect(partial?.done).toBeGreaterThan(0);
    expect(partial?.done).toBeLessThan(5000);

    await query(db.url, 'DELETE FROM stop_at');
    const second = await runCli(['apply', '-d', db.url, '--dir', dir, '--json', '--parallel', '1']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain('resuming after');
    const [result] = await query<{ wrong: number; touched: number; distinct: number }>(
      db.url,
      `SELECT (SELECT count(*)::int FROM events WHERE k IS DISTINCT FROM v * 2) AS wrong,
              (SELECT count(*)::int FROM touched) AS touched, (SELECT count(DISTINCT v)::int FROM touched) AS distinct`,
    );
    expect(result).toEqual({ wrong: 0, touched: 5000, distinct: 5000 });
  });
});

describe('analyze: ties between paths', () => {
  const keep = dropAfterAll();

  it("chooses the path with the fewest conflicting rows, shows each candidate's count (text and --json), and --write keeps the choice", async () => {
    const db = keep(await freshDatabase('ambig'));
    // Rentals reach a store through their customer, their inventory or their staff. Customers rent at
    // the other store now and then: by name, customer_id would be chosen; by the data, inventory_id.
    await query(
      db.url,
      `CREATE TABLE stores (id int PRIMARY KEY);
       CREATE TABLE customer (id int PRIMARY KEY, store_id int NOT NULL REFERENCES stores);
       CREATE TABLE inventory (id int PRIMARY KEY, store_id int NOT NULL REFERENCES stores);
       CREATE TABLE staff (id int PRIMARY KEY, store_id int NOT NULL REFERENCES stores);
       CREATE TABLE rental (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customer, inventory_id int NOT NULL REFERENCES inventory, staff_id int NOT NULL REFERENCES staff);
       INSERT INTO stores VALUES (1), (2);
       INSERT INTO customer SELECT g, 1 + g % 2 FROM generate_series(1, 10) g;
       INSERT INTO inventory SELECT g, 1 + g % 2 FROM generate_series(1, 10) g;
       INSERT INTO staff SELECT g, 1 + g % 2 FROM generate_series(1, 10) g;
       -- Inventory and staff agree; every fifth rental's customer belongs to the other store.
       INSERT INTO rental SELECT g, CASE WHEN g % 5 = 0 THEN 1 + (g + 1) % 10 ELSE 1 + g % 10 END, 1 + g % 10, 1 + g % 10 FROM generate_series(1, 100) g;`,
    );
    const dir = writePlan({});
    writeFileSync(join(dir, 'tenantify.config.json'), JSON.stringify({ tenancy: { owner: 'stores' } }));
    const json = await runCli(['tenancy', 'analyze', '-d', db.url, '--dir', dir, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const doc = JSON.parse(json.stdout) as {
      tables: { table: string; via?: { columns: string[] }[]; ambiguous?: { columns: string[]; chosen: boolean; conflicts: number }[] }[];
    };
    const rental = doc.tables.find((t) => t.table === 'public.rental');
    expect(rental?.via?.[0]?.columns).toEqual(['inventory_id']);
    expect(rental?.ambiguous).toEqual([
      { columns: ['inventory_id'], references: 'public.inventory', chosen: true, conflicts: 20 },
      { columns: ['customer_id'], references: 'public.customer', chosen: false, conflicts: 40 },
      { columns: ['staff_id'], references: 'public.staff', chosen: false, conflicts: 20 },
    ]);
    const text = await runCli(['tenancy', 'analyze', '-d', db.url, '--dir', dir, '--no-color']);
    expect(text.stdout).toContain(
      'ambiguous: inventory_id (20 conflicting) chosen, customer_id (40 conflicting), staff_id (20 conflicting)',
    );

    const written = await runCli(['tenancy', 'analyze', '-d', db.url, '--dir', dir, '--write', '--json']);
    expect(written.code, written.stderr).toBe(0);
    const config = JSON.parse(readFileSync(join(dir, 'tenantify.config.json'), 'utf8')) as {
      tenancy: { tables?: Record<string, unknown> };
    };
    expect(config.tenancy.tables).toEqual({ rental: { via: ['inventory_id'] } });
  });
});

describe('the comparison of two states', () => {
  const keep = dropAfterAll();

  it('names the columns that differ, not only the rows', async () => {
    const db = keep(await freshDatabase('cmpcol'));
    await query(
      db.url,
      `CREATE TABLE film (id int PRIMARY KEY, title text NOT NULL, last_update timestamptz NOT NULL DEFAULT '2022-01-01');
       INSERT INTO film (id, title) SELECT g, 'Film ' || g FROM generate_series(1, 50) g;
       CREATE TABLE log (film_id int, at timestamptz);
       INSERT INTO log SELECT g, '2022-01-01' FROM generate_series(1, 10) g;`,
    );
    const before = await withClient(db.url, (c) => describeDatabase(c, ['tenantify']));
    await query(db.url, `UPDATE film SET last_update = now() WHERE id <= 5; UPDATE log SET at = now() WHERE film_id = 3`);
    const after = await withClient(db.url, (c) => describeDatabase(c, ['tenantify']));
    const lines = differences(before, after);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain('content of public.film differs');
    expect(lines[0]).toContain('columns that differ: last_update;');
    expect(lines[0]).toContain('changed: id 1, id 2, id 3 (and 2 more)');
    expect(lines[1]).toContain('content of public.log differs');
    expect(lines[1]).toContain('columns that differ: at;');
  });
});
