/** `tenancy check` inside `rehearse` (a step after each apply, a JUnit case per rule) and `verify --tenancy`. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { contentFingerprint, dropAfterAll, freshDatabase, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

const legacy = `
  CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL);
  CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, total int NOT NULL);
  INSERT INTO customers (email) SELECT 'c' || g || '@example.com' FROM generate_series(1, 50) g;
  INSERT INTO orders (customer_id, total) SELECT 1 + g % 50, g FROM generate_series(1, 200) g;`;

const config = JSON.stringify({ tenancy: { owner: 'customers', tenants: 'organizations', key: 'organization_id' } });

function plan(backfillOrders: boolean): Record<string, string> {
  return {
    'tenantify.config.json': config,
    'migrations/0001_organizations.sql': `CREATE TABLE organizations (id serial PRIMARY KEY, legacy_customers_id int NOT NULL UNIQUE);
ALTER TABLE customers ADD COLUMN organization_id int REFERENCES organizations (id);
ALTER TABLE orders ADD COLUMN organization_id int REFERENCES organizations (id);
`,
    'rollbacks/0001_organizations.sql':
      'ALTER TABLE orders DROP COLUMN organization_id;\nALTER TABLE customers DROP COLUMN organization_id;\nDROP TABLE organizations;\n',
    'backfills/0002_fill.sql': `INSERT INTO organizations (legacy_customers_id) SELECT id FROM customers ORDER BY id;
UPDATE customers c SET organization_id = o.id FROM organizations o WHERE o.legacy_customers_id = c.id;
${backfillOrders ? 'UPDATE orders r SET organization_id = c.organization_id FROM customers c WHERE c.id = r.customer_id;' : ''}
`,
    'rollbacks/0002_fill.sql':
      'UPDATE orders SET organization_id = NULL;\nUPDATE customers SET organization_id = NULL;\nDELETE FROM organizations;\n',
    'migrations/0003_not_null.sql': `ALTER TABLE customers ALTER organization_id SET NOT NULL;
${backfillOrders ? 'ALTER TABLE orders ALTER organization_id SET NOT NULL;' : ''}
CREATE INDEX customers_organization ON customers (organization_id);
CREATE INDEX orders_organization ON orders (organization_id);
`,
    'rollbacks/0003_not_null.sql': `DROP INDEX orders_organization;
DROP INDEX customers_organization;
ALTER TABLE customers ALTER organization_id DROP NOT NULL;
ALTER TABLE orders ALTER organization_id DROP NOT NULL;
`,
  };
}

describe('tenancy check in rehearse and verify', () => {
  const dropped = dropAfterAll();
  async function source(): Promise<string> {
    const db = dropped(await freshDatabase('tcsrc'));
    await query(db.url, legacy);
    return db.url;
  }

  it('rehearse checks the model after each apply; the JUnit report has a case per rule', async () => {
    const url = await source();
    const junit = join(mkdtempSync(join(tmpdir(), 'junit-')), 'rehearse.xml');
    const result = await runCli(['rehearse', '-d', url, '--dir', writePlan(plan(true)), '--json', '--junit', junit]);
    const doc = JSON.parse(result.stdout) as { ok: boolean; steps: { name: string; ok: boolean; details: string[] }[] };
    expect(doc.steps.map((s) => [s.name, s.ok])).toEqual([
      ['load', true],
      ['apply', true],
      ['verify', true],
      ['tenancy check', true],
      ['rollback', true],
      ['compare with the source', true],
      ['apply again', true],
      ['verify again', true],
      ['tenancy check again', true],
    ]);
    expect(doc.steps[3]?.details).toEqual(['10 of 11 rules passed on 2 tables']);
    expect(result.code).toBe(0);
    const xml = readFileSync(junit, 'utf8');
    const cases = [...xml.matchAll(/<testcase classname="rehearse\.tenancy_check" name="([^"]+)"/g)].map((m) => m[1]);
    expect(cases.sort()).toEqual(
      [
        'tenant-key-missing',
        'tenant-key-type-mismatch',
        'tenant-key-nullable',
        'null-tenant',
        'dangling-tenant',
        'foreign-key-missing',
        'cross-tenant-reference',
        'global-table-references-tenant',
        'tenant-key-unindexed',
        'unique-without-tenant-key',
        'foreign-key-without-tenant-key',
      ].sort(),
    );
    // Warnings do not fail a case.
    expect(xml).not.toContain('<failure');
  });

  it('rehearse fails at the tenancy check when the plan leaves rows without a tenant (exit 3), the rule a failed JUnit case', async () => {
    const url = await source();
    const junit = join(mkdtempSync(join(tmpdir(), 'junit-')), 'rehearse.xml');
    const result = await runCli(['rehearse', '-d', url, '--dir', writePlan(plan(false)), '--junit', junit]);
    expect(result.code).toBe(3);
    expect(result.stdout).toContain('null-tenant public.orders: organization_id is NULL');
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(
      /<testcase classname="rehearse\.tenancy_check" name="null-tenant" time="[\d.]+">\s*<failure message="error public\.orders: organization_id is NULL \(200 rows\)">/,
    );
    expect(xml).toMatch(/<testcase classname="rehearse\.tenancy_check" name="dangling-tenant" time="[\d.]+"\/>/);
  });

  it('verify --tenancy runs the check beside the stored verify queries: exit 3 and both in one JSON document; the database unchanged', async () => {
    const db = dropped(await freshDatabase('tcverify'));
    await query(db.url, legacy);
    const dir = writePlan(plan(false));
    const applied = await runCli(['apply', '-d', db.url, '--dir', dir, '--no-snapshot']);
    expect(applied.code).toBe(0);
    const before = await contentFingerprint(db.url);
    const plain = await runCli(['verify', '-d', db.url, '--dir', dir]);
    expect(plain.code).toBe(0);
    const result = await runCli(['verify', '-d', db.url, '--dir', dir, '--tenancy', '--json']);
    expect(result.code).toBe(3);
    const doc = JSON.parse(result.stdout) as {
      checks: unknown[];
      tenancy: { findings: { rule: string; table: string; rows: number | null }[]; checked: { tables: number; rules: number } };
    };
    expect(doc.checks).toEqual([]);
    expect(doc.tenancy.checked).toEqual({ tables: 2, rules: 11 });
    expect(doc.tenancy.findings.filter((f) => f.rows !== null).map((f) => [f.rule, f.table, f.rows])).toEqual([
      ['null-tenant', 'public.orders', 200],
    ]);
    expect(result.stderr).toContain('NOT isolated: 2 errors');
    expect(await contentFingerprint(db.url)).toEqual(before);
  });
});
