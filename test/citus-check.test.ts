/**
 * `tenancy check` on a Citus cluster (a coordinator and two workers): a tenancy distributed
 * the way Citus's multi-tenant guide asks has no finding; each Citus rule sees the
 * placement planted for it; without the extension the rules are not active at all.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenancyCheck } from '../src/app/tenancy-check.js';
import { startThrowawayCitus, type ThrowawayCitus } from '../src/db/throwaway.js';
import { buildScope } from '../src/tenancy/check-scope.js';
import { readCatalog } from '../src/tenancy/catalog.js';
import { analyzeTenancy } from '../src/tenancy/graph.js';
import { distributionKeyMismatch } from '../src/tenancy/rules/distribution.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';
import { describeWithCitus } from './support/citus.js';

/**
 * Composite keys with the key first everywhere, a self-reference, a lookup table. The
 * foreign keys come apart: Citus distributes no table that a plain table references, nor one
 * that references a plain table, so a placement runs between the tables and their keys.
 */
const tables = `
  CREATE TABLE organizations (id int PRIMARY KEY, name text NOT NULL);
  CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL);
  CREATE TABLE accounts (organization_id int NOT NULL, id int NOT NULL, country_code text, name text NOT NULL, PRIMARY KEY (organization_id, id));
  CREATE TABLE projects (organization_id int NOT NULL, id int NOT NULL, account_id int NOT NULL, parent_id int, name text NOT NULL, PRIMARY KEY (organization_id, id));
  INSERT INTO organizations VALUES (1, 'Acme'), (2, 'Globex');
  INSERT INTO countries VALUES ('fr', 'France'), ('jp', 'Japan');
  INSERT INTO accounts VALUES (1, 1, 'fr', 'ann'), (1, 2, NULL, 'bob'), (2, 3, 'jp', 'eve');
  INSERT INTO projects VALUES (1, 1, 1, NULL, 'rockets'), (1, 2, 2, 1, 'fuel'), (2, 3, 3, NULL, 'widgets');`;

// One constraint per ALTER TABLE, each its own transaction: Citus refuses ADD CONSTRAINT beside
// other subcommands on a distributed table, and a foreign key to a reference table after a
// parallel operation on a distributed table in the same transaction.
const foreignKeys = [
  'ALTER TABLE accounts ADD FOREIGN KEY (organization_id) REFERENCES organizations',
  'ALTER TABLE accounts ADD FOREIGN KEY (country_code) REFERENCES countries',
  'ALTER TABLE projects ADD FOREIGN KEY (organization_id) REFERENCES organizations',
  'ALTER TABLE projects ADD FOREIGN KEY (organization_id, account_id) REFERENCES accounts (organization_id, id)',
  'ALTER TABLE projects ADD FOREIGN KEY (organization_id, parent_id) REFERENCES projects (organization_id, id)',
];
const schema = [tables, ...foreignKeys];

const distributed = `
  SELECT create_reference_table('countries');
  SELECT create_distributed_table('organizations', 'id');
  SELECT create_distributed_table('accounts', 'organization_id', colocate_with => 'organizations');
  SELECT create_distributed_table('projects', 'organization_id', colocate_with => 'organizations');`;

const model = { tenancy: { owner: 'accounts', tenants: 'organizations', key: 'organization_id' } };
const citusRules = ['distribution-key-mismatch', 'reference-table-missing'];

const summary = (findings: { rule: string; table: string; detail: string }[]): string[] =>
  findings.map((f) => `${f.rule} ${f.table}: ${f.detail}`).sort();

describeWithCitus('tenancy check on a Citus cluster', () => {
  let cluster: ThrowawayCitus;
  let databases = 0;
  const dir = writePlan({ 'tenantify.config.json': JSON.stringify(model) });

  beforeAll(async () => {
    cluster = await startThrowawayCitus();
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
  });

  /** A database of the cluster, `steps` run in it on the coordinator. */
  async function database(...steps: (string | string[])[]): Promise<string> {
    const url = await cluster.createDatabase(`check_${++databases}`);
    for (const step of steps.flat()) await query(url, step);
    return url;
  }

  it('a tenancy distributed by the key, colocated, with its lookup table a reference table: no finding', async () => {
    const url = await database(tables, distributed, foreignKeys);
    const result = await tenancyCheck({ dir, url });
    expect(summary(result.findings)).toEqual([]);
    expect(result.passed).toEqual(expect.arrayContaining(citusRules));
    expect(result.ok).toBe(true);
  });

  it('distribution-key-mismatch: the tenants table and the owner as reference tables, a tenant table distributed by its id', async () => {
    // A table distributed by another column than the key can only reference reference tables.
    const url = await database(
      tables,
      `ALTER TABLE accounts ADD UNIQUE (id);
       CREATE TABLE events (organization_id int NOT NULL, id int NOT NULL, account_id int NOT NULL, PRIMARY KEY (organization_id, id));
       SELECT create_reference_table('countries');
       SELECT create_reference_table('organizations');
       SELECT create_reference_table('accounts');
       SELECT create_distributed_table('projects', 'organization_id');
       SELECT create_distributed_table('events', 'id');`,
      foreignKeys,
      'ALTER TABLE events ADD FOREIGN KEY (account_id) REFERENCES accounts (id)',
    );
    const before = await query(url, 'SELECT logicalrelid::text AS t, partmethod::text AS m FROM pg_dist_partition ORDER BY 1');
    const result = await tenancyCheck({ dir, url, rules: citusRules });
    expect(summary(result.findings)).toEqual([
      "distribution-key-mismatch public.accounts: a reference table (copied to every node), not by organization_id: a tenant's rows are not kept on one node",
      "distribution-key-mismatch public.events: distributed by id, not by organization_id: a tenant's rows are not kept on one node",
      'distribution-key-mismatch public.organizations: the tenants table is a reference table (copied to every node), not distributed by id',
    ]);
    expect(result.findings.every((f) => f.level === 'error')).toBe(true);
    expect(result.ok).toBe(false);
    // The check reads only.
    expect(await query(url, 'SELECT logicalrelid::text AS t, partmethod::text AS m FROM pg_dist_partition ORDER BY 1')).toEqual(before);
  });

  it('distribution-key-mismatch: distributed by the key in another colocation group', async () => {
    // Citus refuses a foreign key between tables of two groups, so the catalog of the good
    // placement is read and one table's group changed in it.
    const url = await database(tables, distributed, foreignKeys);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const catalog = await readCatalog(client);
      const projects = catalog.tables.find((t) => t.name === 'public.projects');
      const group = projects?.distribution?.colocationId as number;
      projects!.distribution = { method: 'hash', column: 'organization_id', colocationId: group + 100 };
      const scope = buildScope(catalog, analyzeTenancy(catalog, model.tenancy));
      expect(summary(distributionKeyMismatch.check(scope).map((f) => ({ rule: distributionKeyMismatch.name, ...f })))).toEqual([
        `distribution-key-mismatch public.projects: distributed by organization_id but not colocated with organizations (colocation group ${group + 100}, the tenants table's ${group}): joins on the key cross nodes`,
      ]);
    } finally {
      await client.end();
    }
  });

  it('reference-table-missing: the lookup table tenant tables reference left out of the reference tables', async () => {
    // The tenants table a reference table makes the tables that reference it Citus local
    // tables, and with them the lookup table they reference: none of them on the workers.
    const url = await database(schema, "SELECT create_reference_table('organizations')");
    const result = await tenancyCheck({ dir, url, rules: ['reference-table-missing'] });
    expect(summary(result.findings)).toEqual([
      'reference-table-missing public.countries: a Citus local table (on the coordinator only), referenced by accounts',
    ]);
  });
});

describe('tenancy check without Citus', () => {
  const dropped = dropAfterAll();
  it('has no Citus rule active: neither passed nor found', async () => {
    const db = dropped(await freshDatabase('tcnocitus'));
    for (const step of schema) await query(db.url, step);
    const dir = writePlan({ 'tenantify.config.json': JSON.stringify(model) });
    const result = await tenancyCheck({ dir, url: db.url });
    expect(result.passed.filter((r) => citusRules.includes(r))).toEqual([]);
    expect(result.findings.filter((f) => citusRules.includes(f.rule))).toEqual([]);
  });
});
