import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { runCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';

const legacy = `
  CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL, company text);
  INSERT INTO customers (email, company) SELECT 'c' || g || '@example.com', CASE WHEN g % 3 = 0 THEN NULL ELSE 'co' || (g % 40) END FROM generate_series(1, 2000) g;`;

const good = {
  'migrations/0001_organizations.sql':
    'CREATE TABLE organizations (id serial PRIMARY KEY, name text NOT NULL UNIQUE);\nALTER TABLE customers ADD COLUMN organization_id int REFERENCES organizations (id);\n',
  'rollbacks/0001_organizations.sql': 'ALTER TABLE customers DROP COLUMN organization_id;\nDROP TABLE organizations;\n',
  'backfills/0002_fill.sql': `INSERT INTO organizations (name) SELECT DISTINCT coalesce(company, email) FROM customers ON CONFLICT DO NOTHING;
UPDATE customers c SET organization_id = o.id FROM organizations o WHERE o.name = coalesce(c.company, c.email);
-- tenantify:verify every customer has an organization
SELECT id FROM customers WHERE organization_id IS NULL;
`,
  'rollbacks/0002_fill.sql': 'UPDATE customers SET organization_id = NULL;\nDELETE FROM organizations;\n',
  'migrations/0003_index.sql':
    '-- tenantify:transaction off\nCREATE INDEX CONCURRENTLY customers_org_idx ON customers (organization_id);\n',
  'rollbacks/0003_index.sql': '-- tenantify:transaction off\nDROP INDEX CONCURRENTLY customers_org_idx;\n',
};

function fullDump(url: string): string {
  const out = spawnSync('pg_dump', ['-d', url], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(out.stderr);
  return out.stdout
    .split('\n')
    .filter((l) => !/^\\(un)?restrict /.test(l))
    .join('\n');
}

describe('rehearse', () => {
  const dropped = dropAfterAll();
  async function source() {
    const db = dropped(await freshDatabase('src'));
    await query(db.url, legacy);
    return db.url;
  }

  it('passes a good plan, writes a JUnit file that parses, and leaves the source exactly as it was', async () => {
    const url = await source();
    const before = fullDump(url);
    const junit = join(mkdtempSync(join(tmpdir(), 'junit-')), 'rehearse.xml');
    const result = await runCli(['rehearse', '-d', url, '--dir', writePlan(good), '--json', '--junit', junit]);
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout) as { ok: boolean; steps: { name: string; ok: boolean }[] };
    expect(doc.steps.map((s) => [s.name, s.ok])).toEqual([
      ['load', true],
      ['apply', true],
      ['verify', true],
      ['rollback', true],
      ['compare with the source', true],
      ['apply again', true],
      ['verify again', true],
    ]);
    expect(fullDump(url)).toBe(before);
    const [ledger] = await query<{ n: number }>(url, "SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'tenantify'");
    expect(ledger?.n).toBe(0);
    const script = [
      'import sys, json, xml.etree.ElementTree as E',
      'r = E.parse(sys.argv[1]).getroot()',
      'suites = [{"name": s.get("name"), "tests": int(s.get("tests")), "failures": int(s.get("failures")), "time": float(s.get("time")), "cases": len(s.findall("testcase")), "caseTime": sum(float(c.get("time")) for c in s.findall("testcase"))} for s in r.findall("testsuite")]',
      'print(json.dumps({"tests": int(r.get("tests")), "failures": int(r.get("failures")), "time": float(r.get("time")), "suites": suites}))',
    ].join('\n');
    const parsed = spawnSync('python3', ['-c', script, junit], { encoding: 'utf8' });
    expect(parsed.stderr).toBe('');
    const report = JSON.parse(parsed.stdout) as {
      tests: number;
      failures: number;
      time: number;
      suites: { name: string; tests: number; failures: number; time: number; cases: number; caseTime: number }[];
    };
    expect(report.failures).toBe(0);
    // A suite of the 7 steps, then one per step that ran units: 3 applied twice, 3 reverted, checks of 3 units verified twice.
    expect(report.suites.map((s) => [s.name, s.tests, s.cases])).toEqual([
      ['tenantify rehearse', 7, 7],
      ['tenantify rehearse: apply', 3, 3],
      ['tenantify rehearse: verify', 3, 3],
      ['tenantify rehearse: rollback', 3, 3],
      ['tenantify rehearse: apply again', 3, 3],
      ['tenantify rehearse: verify again', 3, 3],
    ]);
    expect(report.tests).toBe(22);
    // Nothing counted twice: the root's time is the steps', each suite's the sum of its cases.
    expect(report.time).toBeCloseTo(report.suites[0]!.caseTime, 2);
    for (const suite of report.suites) expect(suite.time).toBeCloseTo(suite.caseTime, 2);
    expect(readFileSync(junit, 'utf8')).toContain('classname="rehearse.apply" name="0002_fill"');
  });

  it('fails a plan whose rollback forgets a column, and names it', async () => {
    const url = await source();
    const forgetful = {
      ...good,
      'rollbacks/0001_organizations.sql':
        'ALTER TABLE customers DROP CONSTRAINT customers_organization_id_fkey;\nDROP TABLE organizations;\n',
    };
    const junit = join(mkdtempSync(join(tmpdir(), 'junit-')), 'rehearse.xml');
    const result = await runCli(['rehearse', '-d', url, '--dir', writePlan(forgetful), '--junit', junit]);
    expect(result.code).toBe(3);
    expect(result.stdout).toContain('✖ compare with the source');
    expect(result.stdout).toContain('column public.customers.organization_id is left over (integer #4)');
    expect(readFileSync(junit, 'utf8')).toMatch(
      /<testcase classname="rehearse" name="compare with the source" time="[\d.]+">\s*<failure message="column public.customers.organization_id is left over/,
    );
  });

  it('needs exactly one source', async () => {
    const result = await runCli(['rehearse', '--dir', writePlan(good)]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('rehearse needs one source');
  });
});
