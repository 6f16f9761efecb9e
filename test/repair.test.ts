import { hostname } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

const wrongVerify = `CREATE TABLE accounts (id int PRIMARY KEY, email text);
INSERT INTO accounts VALUES (1, 'a@example.com');
-- tenantify:verify there is exactly one account
SELECT 1 WHERE (SELECT count(*) FROM accounts) <> 1;
`;
const rightVerify = `CREATE TABLE accounts (id int PRIMARY KEY, email text);
INSERT INTO accounts VALUES (1, 'a@example.com');
-- tenantify:verify every account has an email
SELECT id FROM accounts WHERE email IS NULL;
`;

async function ledgerState(url: string): Promise<unknown> {
  return {
    units: await query(url, 'SELECT id, status, checksum, verify_checks FROM tenantify.units ORDER BY id'),
    events: await query(url, 'SELECT count(*)::int AS n FROM tenantify.events'),
  };
}

describe('repair', () => {
  const dropLater = dropAfterAll();

  it("accepts an applied unit's edited file: new checksum and verify queries, recorded with who, when and why; then apply and verify pass", async () => {
    const db = dropLater(await freshDatabase('repair'));
    const dir = writePlan({ 'migrations/0001_accounts.sql': wrongVerify, 'rollbacks/0001_accounts.sql': 'DROP TABLE accounts;\n' });
    const cli = (...args: string[]) => runCli([...args, '--dir', dir, '-d', db.url]);
    expect((await cli('apply', '--no-snapshot')).code).toBe(0);
    await query(db.url, "INSERT INTO accounts VALUES (2, 'b@example.com')");
    // The stored verify was true only at creation: it fails from now on.
    expect((await cli('verify')).code).toBe(3);

    writeFileSync(join(dir, 'migrations/0001_accounts.sql'), rightVerify);
    writeFileSync(join(dir, 'migrations/0002_later.sql'), 'CREATE TABLE later (id int);\n');
    const drift = await cli('apply', '--no-snapshot');
    expect(drift.code).toBe(5);

    // Refusals touch nothing.
    const before = await ledgerState(db.url);
    const unknown = await cli('repair', '0009_nope', '--reason', 'typo');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('repair 0009_nope: no such unit in the plan');
    const notApplied = await cli('repair', '0002_later', '--reason', 'why not');
    expect(notApplied.code).toBe(2);
    expect(notApplied.stderr).toContain('repair 0002_later: the unit is not applied; repair accepts the edited file of an applied unit');
    const noReason = await cli('repair', '0001_accounts');
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain("required option '--reason <text>' not specified");
    const blankReason = await cli('repair', '0001_accounts', '--reason', '  ');
    expect(blankReason.code).toBe(2);
    expect(await ledgerState(db.url)).toEqual(before);

    const [{ checksum: oldChecksum } = { checksum: '' }] = await query<{ checksum: string }>(
      db.url,
      "SELECT checksum FROM tenantify.units WHERE id = '0001_accounts'",
    );
    const repaired = await cli('repair', '0001_accounts', '--reason', 'the count held only at creation', '--json');
    expect(repaired.code, repaired.stderr).toBe(0);
    const doc = JSON.parse(repaired.stdout);
    expect(doc).toMatchObject({
      unit: '0001_accounts',
      repaired: true,
      previousChecksum: oldChecksum,
      verifyChecks: [{ name: 'every account has an email' }],
    });

    const [unit] = await query<{ checksum: string; verify_checks: { name: string }[]; status: string }>(
      db.url,
      "SELECT checksum, verify_checks, status FROM tenantify.units WHERE id = '0001_accounts'",
    );
    expect(unit?.status).toBe('applied');
    expect(unit?.checksum).toBe(doc.checksum);
    expect(unit?.checksum).not.toBe(oldChecksum);
    expect(unit?.verify_checks.map((c) => c.name)).toEqual(['every account has an email']);
    const [event] = await query<{ event: string; at: Date; detail: Record<string, any>; command: string; db_user: string }>(
      db.url,
      "SELECT e.event, e.at, e.detail, r.command, r.db_user FROM tenantify.events e JOIN tenantify.runs r ON r.id = e.run_id WHERE e.unit_id = '0001_accounts' ORDER BY e.id DESC LIMIT 1",
    );
    const [{ user } = { user: '' }] = await query<{ user: string }>(db.url, 'SELECT current_user AS user');
    expect(event).toMatchObject({ event: 'repaired', command: 'repair', db_user: user });
    expect(event?.detail).toMatchObject({
      reason: 'the count held only at creation',
      user,
      host: hostname(),
      previous: { checksum: oldChecksum, verifyChecks: [{ name: 'there is exactly one account' }] },
      checksum: doc.checksum,
    });
    expect(event?.at).toBeInstanceOf(Date);

    // No drift any more: apply runs the next unit; verify runs the new query.
    const apply = await cli('apply', '--no-snapshot');
    expect(apply.code, apply.stderr).toBe(0);
    const verify = await cli('verify', '--json');
    expect(verify.code).toBe(0);
    expect(JSON.parse(verify.stdout).checks).toEqual([
      expect.objectContaining({ unit: '0001_accounts', name: 'every account has an email', ok: true }),
    ]);

    // Once more: nothing to repair, nothing written.
    const events = await query(db.url, 'SELECT count(*)::int AS n FROM tenantify.events');
    const again = await cli('repair', '0001_accounts', '--reason', 'again');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("Nothing to repair: 0001_accounts's file matches");
    expect(await query(db.url, 'SELECT count(*)::int AS n FROM tenantify.events')).toEqual(events);
  });
});
