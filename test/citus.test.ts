/** The throwaway Citus cluster: a coordinator and two workers from the local binaries. */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postmasterRunning, query } from './support/db.js';
import { findCitus, startThrowawayCitus, type ThrowawayCitus } from '../src/db/throwaway.js';

const citus = findCitus();
const missing = 'missing' in citus ? citus.missing : undefined;

const portOf = (url: string): number => Number(new URL(url).port);

describe('finding the extension', () => {
  it('says what is missing for binaries without Citus', () => {
    const bin = mkdtempSync(join(tmpdir(), 'no-citus-'));
    const found = findCitus({ bin, majorVersion: 15 });
    expect(found).toEqual({ missing: expect.stringContaining('the Citus extension is not installed for PostgreSQL 15: no ') });
  });
});

describe.skipIf(missing !== undefined)(`a throwaway Citus cluster${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let cluster: ThrowawayCitus;
  beforeAll(async () => {
    cluster = await startThrowawayCitus();
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it('has a coordinator and two active workers', async () => {
    expect(cluster.directories).toHaveLength(3);
    for (const directory of cluster.directories) expect(postmasterRunning(directory)).toBe(true);
    const nodes = await query<{ port: number }>(cluster.url, 'SELECT node_port::int AS port FROM citus_get_active_worker_nodes() ORDER BY 1');
    expect(nodes.map((n) => n.port)).toEqual(cluster.workerUrls.map(portOf).sort((a, b) => a - b));
  });

  it("routes a tenant's query to one task on one worker", async () => {
    await query(cluster.url, `CREATE TABLE accounts (org int NOT NULL, id int NOT NULL, PRIMARY KEY (org, id));
      SELECT create_distributed_table('accounts', 'org');
      INSERT INTO accounts SELECT g % 10, g FROM generate_series(1, 200) g;`);
    const [{ shards }] = (await query<{ shards: number }>(cluster.url, "SELECT count(*)::int AS shards FROM citus_shards WHERE table_name = 'accounts'::regclass")) as [{ shards: number }];
    expect(shards).toBe(4);
    const plan = (await query<{ 'QUERY PLAN': string }>(cluster.url, 'EXPLAIN SELECT * FROM accounts WHERE org = 3')).map((r) => r['QUERY PLAN']).join('\n');
    expect(plan).toMatch(/Task Count: 1\b/);
    const node = /Node: host=127\.0\.0\.1 port=(\d+)/.exec(plan)?.[1];
    expect(cluster.workerUrls.map(portOf)).toContain(Number(node));
    // A query across tenants fans out to every shard.
    const all = (await query<{ 'QUERY PLAN': string }>(cluster.url, 'EXPLAIN SELECT count(*) FROM accounts')).map((r) => r['QUERY PLAN']).join('\n');
    expect(all).toMatch(/Task Count: 4\b/);
  });

  it('makes databases with the extension and the nodes registered', async () => {
    const url = await cluster.createDatabase('second db');
    const [{ workers }] = (await query<{ workers: number }>(url, 'SELECT count(*)::int AS workers FROM citus_get_active_worker_nodes()')) as [{ workers: number }];
    expect(workers).toBe(2);
    await query(url, "CREATE TABLE lookup (code text PRIMARY KEY); SELECT create_reference_table('lookup')");
    const [{ method }] = (await query<{ method: string }>(url, "SELECT partmethod::text AS method FROM pg_dist_partition WHERE logicalrelid = 'lookup'::regclass")) as [{ method: string }];
    expect(method).toBe('n');
  });
});

describe.skipIf(missing !== undefined)('closing a throwaway Citus cluster', () => {
  it('stops every node and removes their directories', async () => {
    const cluster = await startThrowawayCitus({ workers: 1 });
    expect(cluster.directories).toHaveLength(2);
    await cluster.close();
    for (const directory of cluster.directories) {
      expect(existsSync(directory)).toBe(false);
      expect(postmasterRunning(directory)).toBe(false);
    }
    await expect(query(cluster.url, 'SELECT 1')).rejects.toThrow();
  }, 120_000);

  it('removes every node when its process is interrupted with SIGINT', async () => {
    const script = `
      import { startThrowawayCitus } from ${JSON.stringify(new URL('../src/db/throwaway.ts', import.meta.url).pathname)};
      const c = await startThrowawayCitus({ workers: 1 });
      console.log(JSON.stringify(c.directories));
      setInterval(() => {}, 1000);`;
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const directories = await new Promise<string[]>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()) as string[])));
    expect(directories).toHaveLength(2);
    for (const directory of directories) expect(postmasterRunning(directory)).toBe(true);
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.kill('SIGINT');
    expect(await exited).toBe('SIGINT');
    for (const directory of directories) {
      expect(existsSync(directory)).toBe(false);
      expect(postmasterRunning(directory)).toBe(false);
    }
  }, 120_000);
});
