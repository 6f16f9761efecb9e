/**
 * A precheck in ranges (`-- tenantify:ranges <table> key=<column> size=N` under its marker):
 * its query runs once per range of the key, and the violations are every range's.
 */
import { describe, expect, it } from 'vitest';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { runCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';
import { ledgerUnits } from './support/ledger.js';

// Users without an email in three ranges of 500 ids apart; a log without a key, two notes missing far apart.
const legacy = `
  CREATE TABLE users (id serial PRIMARY KEY, email text);
  INSERT INTO users (email) SELECT CASE WHEN g IN (7, 1500, 2999) THEN NULL ELSE 'user' || g || '@example.com' END
    FROM generate_series(1, 3000) g;
  CREATE TABLE events (note text);
  INSERT INTO events SELECT CASE WHEN g IN (3, 1990) THEN NULL ELSE 'event ' || g END FROM generate_series(1, 2000) g;`;

/** The --json error of a failed precheck: code `violations`, the check's count then its sample rows. */
function failure(stdout: string): { details: string[] } {
  const { error } = JSON.parse(stdout) as { error: { code: string; exitCode: number; details: string[] } };
  expect(error.code).toBe('violations');
  expect(error.exitCode).toBe(3);
  return error;
}

function unit(precheck: string): Record<string, string> {
  return { 'migrations/0001_organizations.sql': `CREATE TABLE organizations (id bigint PRIMARY KEY);\n\n${precheck}\n` };
}

describe('prechecks in ranges', () => {
  const dropped = dropAfterAll();
  async function db(): Promise<string> {
    const d = dropped(await freshDatabase('ranges'));
    await query(d.url, legacy);
    return d.url;
  }
  const unchanged = async (url: string): Promise<void> => {
    const [t] = await query<{ missing: boolean }>(url, "SELECT to_regclass('public.organizations') IS NULL AS missing");
    expect(t?.missing).toBe(true);
    expect(await ledgerUnits(url)).toEqual([{ id: '0001_organizations', status: 'failed' }]);
  };

  it('counts the violations of every range of the key (exit 3), the unit not applied', async () => {
    const url = await db();
    const dir = writePlan(
      unit(`-- tenantify:precheck every user has an email
-- tenantify:ranges users key=id size=500
SELECT u.id, u.email FROM users AS u WHERE u.id > $1 AND u.id <= $2 AND u.email IS NULL;`),
    );
    const result = await runCli(['apply', '-d', url, '--dir', dir, '--json']);
    expect(result.code).toBe(3);
    const { details } = failure(result.stdout);
    expect(details[0]).toBe('precheck "every user has an email": 3 rows');
    expect(details.slice(1).map((row) => (JSON.parse(row) as { id: number }).id)).toEqual([7, 1500, 2999]);
    await unchanged(url);
  });

  it('walks a table without a key in ranges of its blocks', async () => {
    const url = await db();
    const dir = writePlan(
      unit(`-- tenantify:precheck every event has a note
-- tenantify:ranges events key=ctid size=100
SELECT e.note FROM events AS e
 WHERE e.ctid >= format('(%s,0)', $1::bigint + 1)::tid AND e.ctid < format('(%s,0)', $2::bigint + 1)::tid
   AND e.note IS NULL;`),
    );
    const result = await runCli(['apply', '-d', url, '--dir', dir, '--json']);
    expect(result.code).toBe(3);
    expect(failure(result.stdout).details).toEqual(['precheck "every event has a note": 2 rows', '    {"note":null}', '    {"note":null}']);
    await unchanged(url);
  });

  it('applies the unit when no range has a violation', async () => {
    const url = await db();
    await query(url, "UPDATE users SET email = 'fixed' || id WHERE email IS NULL");
    const dir = writePlan(
      unit(`-- tenantify:precheck every user has an email
-- tenantify:ranges users key=id size=500
SELECT u.id FROM users AS u WHERE u.id > $1 AND u.id <= $2 AND u.email IS NULL;`),
    );
    const result = await runCli(['apply', '-d', url, '--dir', dir]);
    expect(result.code).toBe(0);
    expect(await ledgerUnits(url)).toEqual([{ id: '0001_organizations', status: 'applied' }]);
  });
});
