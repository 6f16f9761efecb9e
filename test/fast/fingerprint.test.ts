/** The statements fingerprint, and drift decided by it: pure, no database. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/plan/config.js';
import { loadPlan } from '../../src/plan/load.js';
import { planRun } from '../../src/plan/planner.js';
import { row } from '../support/builders.js';
import { writePlan } from '../support/plan-dir.js';

process.env['TENANTIFY_CACHE_DIR'] = 'none';

async function unitOf(text: string | Buffer) {
  const dir = writePlan({});
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(`${dir}/migrations`);
  writeFileSync(`${dir}/migrations/0001_x.sql`, text);
  const [unit] = await loadPlan(dir, await loadConfig(dir));
  if (!unit) throw new Error('no unit');
  return unit;
}

const original = `-- tenantify:retries 2
CREATE TABLE accounts (id int PRIMARY KEY, name text);
INSERT INTO accounts VALUES (1, 'a');
-- tenantify:verify one account
SELECT id FROM accounts WHERE id <> 1;
`;

describe('the statements fingerprint', () => {
  it.each([
    ['comments added', original.replace('CREATE TABLE', '-- the accounts\n/* really */ CREATE TABLE').replace("'a');", "'a'); -- seed")],
    [
      'whitespace and layout',
      original.replace('(id int PRIMARY KEY, name text)', '(\n    id   int PRIMARY KEY,\n\tname text\n)').replace(/\n/g, '\n\n'),
    ],
    ['CRLF line endings', original.replace(/\n/g, '\r\n')],
    ['a UTF-8 BOM', `\uFEFF${original}`],
    ['keywords in lower case', original.replace('CREATE TABLE', 'create table').replace('PRIMARY KEY', 'primary key')],
  ])('is unchanged by %s', async (_, edited) => {
    const [a, b] = [await unitOf(original), await unitOf(edited)];
    // The checksum already reads CRLF as LF; everything else changes it.
    if (!edited.includes('\r\n')) expect(b.checksum).not.toBe(a.checksum);
    expect(b.fingerprint).toBe(a.fingerprint);
    expect(a.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each([
    ['a literal', original.replace("(1, 'a')", "(1, 'b')")],
    ['a column type', original.replace('name text', 'name varchar')],
    [
      'the order of statements',
      original.replace(
        "CREATE TABLE accounts (id int PRIMARY KEY, name text);\nINSERT INTO accounts VALUES (1, 'a');",
        "INSERT INTO accounts VALUES (1, 'a');\nCREATE TABLE accounts (id int PRIMARY KEY, name text);",
      ),
    ],
    ['a directive', original.replace('retries 2', 'retries 3')],
    ["a verify's name", original.replace('one account', 'a single account')],
    ['a statement moved out of its section', original.replace('-- tenantify:verify one account\n', '')],
    ["a quoted identifier's case", original.replace('CREATE TABLE accounts', 'CREATE TABLE "Accounts"')],
  ])('changes with %s', async (_, edited) => {
    expect((await unitOf(edited)).fingerprint).not.toBe((await unitOf(original)).fingerprint);
  });
});

describe('drift by fingerprint', () => {
  it('an applied unit edited cosmetically is not drift when the ledger has its fingerprint', async () => {
    const [before, after] = [await unitOf(original), await unitOf(original.replace(/\n/g, '\r\n').replace('CREATE', '-- why\nCREATE'))];
    const applied = row(after.id, { checksum: before.checksum });
    const plan = planRun([after], [{ ...applied, fingerprint: before.fingerprint }]);
    expect(plan.drifted).toEqual([]);
    expect(plan.entries[0]?.warnings.join()).toMatch(/edited since applied, statements unchanged/);
  });

  it('an applied unit whose statements changed is drift', async () => {
    const [before, after] = [await unitOf(original), await unitOf(original.replace("'a'", "'z'"))];
    const plan = planRun([after], [{ ...row(after.id, { checksum: before.checksum }), fingerprint: before.fingerprint }]);
    expect(plan.drifted.map((e) => e.unit.id)).toEqual(['0001_x']);
  });

  it('a ledger without fingerprints compares checksums, as before', async () => {
    const [before, after] = [await unitOf(original), await unitOf(`${original}-- a comment\n`)];
    expect(planRun([after], [row(after.id, { checksum: before.checksum })]).drifted).toHaveLength(1);
    expect(planRun([after], [row(after.id, { checksum: after.checksum })]).drifted).toHaveLength(0);
  });
});
