import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

const unit = '0001_create_the_organizations_and_their_memberships_for_every_user';
const check = 'every membership points at an organization that exists and is active';

describe('a table piped to another program', () => {
  const dropLater = dropAfterAll();

  it('keeps each row on one line, so grep finds every name whole', async () => {
    const db = dropLater(await freshDatabase('piped'));
    const dir = writePlan({
      [`migrations/${unit}.sql`]: `CREATE TABLE organizations (id int PRIMARY KEY);\n-- tenantify:verify ${check}\nSELECT id FROM organizations WHERE id < 0;\n`,
    });
    expect((await runCli(['apply', '--dir', dir, '-d', db.url, '--no-snapshot'])).code).toBe(0);
    const verify = await runCli(['verify', '--dir', dir, '-d', db.url]);
    expect(verify.code).toBe(0);
    const row = verify.stdout.split('\n').filter((line) => line.includes(unit));
    expect(row).toHaveLength(1);
    expect(row[0]).toContain(check);
    expect(row[0]).toMatch(/pass/);
  });
});
