/** `rehearse --citus`: the round trip on a throwaway Citus cluster instead of one PostgreSQL. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';
import { describeWithCitus } from './support/citus.js';

// A source as a Citus database has it: a reference table, a distributed one, and a plain table the plan distributes.
const fixture = `
  CREATE TABLE plans (code text PRIMARY KEY, name text NOT NULL);
  SELECT create_reference_table('plans');
  INSERT INTO plans VALUES ('free', 'Free'), ('pro', 'Pro');
  CREATE TABLE accounts (org_id int NOT NULL, id bigint NOT NULL, name text NOT NULL, plan text REFERENCES plans (code), PRIMARY KEY (org_id, id));
  SELECT create_distributed_table('accounts', 'org_id');
  INSERT INTO accounts SELECT g % 7, g, 'account ' || g, CASE WHEN g % 2 = 0 THEN 'pro' ELSE 'free' END FROM generate_series(1, 500) g;
  CREATE TABLE events (org_id int NOT NULL, id bigint NOT NULL, what text, PRIMARY KEY (org_id, id));
  INSERT INTO events SELECT g % 7, g, 'event' FROM generate_series(1, 300) g;`;

const plan = (undistribute: string) => ({
  'migrations/0001_status.sql': 'ALTER TABLE accounts ADD COLUMN status text;\n',
  'rollbacks/0001_status.sql': 'ALTER TABLE accounts DROP COLUMN status;\n',
  'backfills/0002_status.sql': `-- tenantify:batch accounts key=id size=100
UPDATE accounts SET status = 'active' WHERE id > $1 AND id <= $2;
-- tenantify:verify every account has a status
SELECT id FROM accounts WHERE status IS NULL;
`,
  'rollbacks/0002_status.sql': 'UPDATE accounts SET status = NULL;\n',
  'migrations/0003_status_index.sql': '-- tenantify:transaction off\nCREATE INDEX CONCURRENTLY accounts_status_idx ON accounts (status);\n',
  'rollbacks/0003_status_index.sql': '-- tenantify:transaction off\nDROP INDEX CONCURRENTLY accounts_status_idx;\n',
  'migrations/0004_distribute_events.sql': `SELECT create_distributed_table('events', 'org_id', colocate_with => 'accounts');
-- tenantify:verify events is distributed
SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'events'::regclass AND partmethod = 'h');
`,
  'rollbacks/0004_distribute_events.sql': undistribute,
});

const rehearse = (args: string[], env: Record<string, string> = {}) =>
  runCli(['rehearse', '--json', ...args], { env: { TENANTIFY_REHEARSE_SERVER_URL: '', ...env } });

interface Result {
  ok: boolean;
  server: string;
  steps: { name: string; ok: boolean; details: string[] }[];
}

function withFixture(files: Record<string, string>): { dir: string; fixture: string } {
  const dir = writePlan(files);
  writeFileSync(join(dir, 'legacy.sql'), fixture);
  return { dir, fixture: join(dir, 'legacy.sql') };
}

describe('rehearse --citus, refused', () => {
  it('--workers without --citus: exit 2', async () => {
    const result = await rehearse(['--workers', '3', '--fixture', 'legacy.sql', '--dir', writePlan({})]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--workers is for a Citus rehearsal');
  });

  it('with a server to rehearse on: exit 2 before any cluster starts', async () => {
    const { dir, fixture } = withFixture(plan("SELECT undistribute_table('events');\n"));
    const result = await rehearse(['--citus', '--fixture', fixture, '--dir', dir], {
      TENANTIFY_REHEARSE_SERVER_URL: 'postgresql://postgres@127.0.0.1:1/postgres',
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--citus starts a throwaway Citus cluster of its own');
  });
});

describeWithCitus('rehearse --citus', () => {
  it('fails a plan whose rollback leaves a table distributed, and names it (exit 3)', async () => {
    const { dir, fixture } = withFixture(plan('SELECT 1;\n'));
    const result = await rehearse(['--citus', '--workers', '1', '--fixture', fixture, '--dir', dir]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('throwaway Citus cluster: a coordinator and 1 worker(s)');
    const doc = JSON.parse(result.stdout) as Result;
    expect(doc.server).toBe('citus');
    expect(doc.steps.map((s) => [s.name, s.ok])).toEqual([
      ['load', true],
      ['apply', true],
      ['verify', true],
      ['rollback', true],
      ['compare with the source', false],
    ]);
    const compare = doc.steps.find((s) => s.name === 'compare with the source');
    expect(compare?.ok).toBe(false);
    expect(compare?.details).toEqual([
      'citus public.events is left over (distributed by org_id, 4 shards, colocated with public.accounts)',
    ]);
  });
});
