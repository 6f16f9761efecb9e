import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query, serverUrl } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

const legacy = `CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL);
INSERT INTO customers SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 20) g;`;

const good = {
  'migrations/0001_note.sql':
    "ALTER TABLE customers ADD COLUMN note text;\n-- tenantify:verify the column is there\nSELECT 1 WHERE NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE column_name = 'note');\n",
  'rollbacks/0001_note.sql': 'ALTER TABLE customers DROP COLUMN note;\n',
};

// The rehearsals run on the suite's server (a new database each) instead of starting one each.
const rehearse = (args: string[], env: Record<string, string> = {}) =>
  runCli(['rehearse', '--json', ...args], { env: { TENANTIFY_REHEARSE_SERVER_URL: serverUrl(), ...env } });

describe('rehearse', () => {
  const dropLater = dropAfterAll();
  afterAll(async () => {
    const made = await query<{ datname: string }>(
      serverUrl(),
      "SELECT datname FROM pg_database WHERE datname LIKE 'rehearsal\\_%' AND datname = ANY($1)",
      [rehearsals],
    );
    for (const { datname } of made) await query(serverUrl(), `DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
  });
  const rehearsals: string[] = [];
  const track = async <T>(run: Promise<T>): Promise<T> => {
    const before = new Set((await query<{ datname: string }>(serverUrl(), 'SELECT datname FROM pg_database')).map((r) => r.datname));
    const result = await run;
    for (const { datname } of await query<{ datname: string }>(serverUrl(), 'SELECT datname FROM pg_database'))
      if (!before.has(datname)) rehearsals.push(datname);
    return result;
  };
  async function source(): Promise<string> {
    const db = dropLater(await freshDatabase('rhsrc'));
    await query(db.url, legacy);
    return db.url;
  }

  it('reads its source from the PG* variables, as every other command does', async () => {
    const url = new URL(await source());
    const env = { PGHOST: url.hostname, PGPORT: url.port, PGUSER: decodeURIComponent(url.username), PGDATABASE: url.pathname.slice(1) };
    const result = await track(rehearse(['--dir', writePlan(good)], env));
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).steps.map((s: { ok: boolean }) => s.ok)).toEqual([true, true, true, true, true, true, true]);
  });

  it('names a few of the rows a rollback left different, by primary key', async () => {
    const url = await source();
    const dir = writePlan({
      'backfills/0001_mess.sql':
        "DELETE FROM customers WHERE id IN (1, 2);\nUPDATE customers SET email = 'x' WHERE id IN (7, 8, 9, 10, 11);\nINSERT INTO customers VALUES (100, 'new');\n",
      'rollbacks/0001_mess.sql': 'SELECT 1;\n',
    });
    const result = await track(rehearse(['-d', url, '--dir', dir]));
    expect(result.code).toBe(3);
    const compare = JSON.parse(result.stdout).steps.find((s: { name: string }) => s.name === 'compare with the source');
    expect(compare.details).toEqual([
      expect.stringMatching(
        /^content of public\.customers differs: 20 rows \(md5 \w+\) before, 19 rows \(md5 \w+\) after; columns that differ: id, email; changed: id 7, id 8, id 9 \(and 2 more\); gone: id 1, id 2; new: id 100$/,
      ),
    ]);
  });

  it('on a source where every unit is already applied, says so instead of "0 units applied"', async () => {
    const url = await source();
    const dir = writePlan(good);
    expect((await runCli(['apply', '-d', url, '--dir', dir, '--no-snapshot'])).code).toBe(0);
    const result = await track(rehearse(['-d', url, '--dir', dir]));
    expect(result.code, result.stderr).toBe(0);
    const steps = JSON.parse(result.stdout).steps as { name: string; ok: boolean; details: string[] }[];
    expect(steps.find((s) => s.name === 'apply')?.details).toEqual([
      'every unit (1) is already applied in the source: its ledger came with the copy, so there is nothing new to rehearse (rehearse a database from before the plan, or --fixture)',
    ]);
    expect(steps.every((s) => s.ok)).toBe(true);
  });
});
