/** The throwaway Citus cluster: a coordinator and two workers, from the local binaries or from citusdata/citus containers. */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postmasterRunning, query } from './support/db.js';
import { UsageError } from '../src/errors.js';
import {
  chooseCitusPath,
  CITUS_IMAGE,
  dockerEngineAnswers,
  findCitus,
  startThrowawayCitus,
  type ThrowawayCitus,
} from '../src/db/throwaway.js';
import { describeWithCitus } from './support/citus.js';

const dockerAnswers = await dockerEngineAnswers();

const portOf = (url: string): number => Number(new URL(url).port);

describe('finding the extension', () => {
  it('says what is missing for binaries without Citus', () => {
    const bin = mkdtempSync(join(tmpdir(), 'no-citus-'));
    const found = findCitus({ bin, majorVersion: 15 });
    expect(found).toEqual({ missing: expect.stringContaining('the Citus extension is not installed for PostgreSQL 15: no ') });
  });
});

describe('choosing the path of a Citus cluster', () => {
  const installed = () => ({ library: '/usr/lib/postgresql/15/lib/citus.so' });
  const absent = () => ({ missing: 'the Citus extension is not installed for PostgreSQL 15: no /usr/lib/postgresql/15/lib/citus.so' });
  const never = async (): Promise<boolean> => {
    throw new Error('the Docker engine was probed');
  };

  it('takes the citusdata/citus containers when a Docker engine answers, even with Citus installed locally', async () => {
    expect(await chooseCitusPath({ prefer: undefined, dockerAnswers: async () => true, localCitus: installed })).toEqual({
      kind: 'testcontainers',
      reason: 'a Docker engine answers',
    });
  });
  it('falls back to the local binaries when no engine answers', async () => {
    expect((await chooseCitusPath({ prefer: undefined, dockerAnswers: async () => false, localCitus: installed })).kind).toBe('local');
  });
  it('takes the path asked for without probing', async () => {
    expect((await chooseCitusPath({ prefer: 'local', dockerAnswers: never, localCitus: installed })).kind).toBe('local');
    expect((await chooseCitusPath({ prefer: 'docker', dockerAnswers: never, localCitus: absent })).kind).toBe('testcontainers');
  });
  it('says what is missing locally when the local binaries are asked for', async () => {
    const error = await chooseCitusPath({ prefer: 'local', dockerAnswers: never, localCitus: absent }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toBe(absent().missing);
    expect((error as UsageError).exitCode).toBe(2);
    expect((error as UsageError).hint).toContain('install Citus into this PostgreSQL');
  });
  it('names both ways when there is neither a Docker engine nor a local Citus', async () => {
    const error = await chooseCitusPath({ prefer: undefined, dockerAnswers: async () => false, localCitus: absent }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toBe(
      `no way to start a throwaway Citus cluster: no Docker engine answers, and ${absent().missing}`,
    );
    expect((error as UsageError).hint).toContain(`start Docker (the cluster then runs from the ${CITUS_IMAGE} image)`);
    expect((error as UsageError).hint).toContain('install Citus into this PostgreSQL');
  });
});

describeWithCitus('a throwaway Citus cluster', () => {
  let cluster: ThrowawayCitus;
  beforeAll(async () => {
    cluster = await startThrowawayCitus({ prefer: 'local' });
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it('has a coordinator and two active workers', async () => {
    expect(cluster.directories).toHaveLength(3);
    for (const directory of cluster.directories) expect(postmasterRunning(directory)).toBe(true);
    const nodes = await query<{ port: number }>(
      cluster.url,
      'SELECT node_port::int AS port FROM citus_get_active_worker_nodes() ORDER BY 1',
    );
    expect(nodes.map((n) => n.port)).toEqual(cluster.workerUrls.map(portOf).sort((a, b) => a - b));
  });

  it("routes a tenant's query to one task on one worker", async () => {
    await query(
      cluster.url,
      `CREATE TABLE accounts (org int NOT NULL, id int NOT NULL, PRIMARY KEY (org, id));
      SELECT create_distributed_table('accounts', 'org');
      INSERT INTO accounts SELECT g % 10, g FROM generate_series(1, 200) g;`,
    );
    const [{ shards }] = (await query<{ shards: number }>(
      cluster.url,
      "SELECT count(*)::int AS shards FROM citus_shards WHERE table_name = 'accounts'::regclass",
    )) as [{ shards: number }];
    expect(shards).toBe(4);
    const plan = (await query<{ 'QUERY PLAN': string }>(cluster.url, 'EXPLAIN SELECT * FROM accounts WHERE org = 3'))
      .map((r) => r['QUERY PLAN'])
      .join('\n');
    expect(plan).toMatch(/Task Count: 1\b/);
    const node = /Node: host=127\.0\.0\.1 port=(\d+)/.exec(plan)?.[1];
    expect(cluster.workerUrls.map(portOf)).toContain(Number(node));
    // A query across tenants fans out to every shard.
    const all = (await query<{ 'QUERY PLAN': string }>(cluster.url, 'EXPLAIN SELECT count(*) FROM accounts'))
      .map((r) => r['QUERY PLAN'])
      .join('\n');
    expect(all).toMatch(/Task Count: 4\b/);
  });

  it('makes databases with the extension and the nodes registered: the first registered afresh, the next copied from a template', async () => {
    for (const name of ['second db', 'third db']) {
      const url = await cluster.createDatabase(name);
      const [{ workers }] = (await query<{ workers: number }>(
        url,
        'SELECT count(*)::int AS workers FROM citus_get_active_worker_nodes()',
      )) as [{ workers: number }];
      expect(workers, name).toBe(2);
      await query(url, "CREATE TABLE lookup (code text PRIMARY KEY); SELECT create_reference_table('lookup')");
      const [{ method }] = (await query<{ method: string }>(
        url,
        "SELECT partmethod::text AS method FROM pg_dist_partition WHERE logicalrelid = 'lookup'::regclass",
      )) as [{ method: string }];
      expect(method, name).toBe('n');
      // A distributed table: its shards on both workers, its rows read back through them, its
      // metadata on each worker's database of that name.
      await query(
        url,
        `CREATE TABLE accounts (org int NOT NULL, id int NOT NULL, PRIMARY KEY (org, id));
        SELECT create_distributed_table('accounts', 'org');
        INSERT INTO accounts SELECT g % 10, g FROM generate_series(1, 200) g;`,
      );
      const ports = await query<{ port: number }>(
        url,
        "SELECT DISTINCT nodeport::int AS port FROM citus_shards WHERE table_name = 'accounts'::regclass ORDER BY 1",
      );
      expect(
        ports.map((p) => p.port),
        name,
      ).toEqual(cluster.workerUrls.map(portOf).sort((a, b) => a - b));
      expect(await query(url, 'SELECT count(*)::int AS n FROM accounts'), name).toEqual([{ n: 200 }]);
      const onWorkers = await query<{ result: string }>(
        url,
        "SELECT result FROM run_command_on_workers($$SELECT current_database() || ' ' || count(*) FROM pg_dist_partition$$)",
      );
      expect(
        onWorkers.map((w) => w.result),
        name,
      ).toEqual([`${name} 2`, `${name} 2`]);
    }
  });
});

describeWithCitus('closing a throwaway Citus cluster', () => {
  it('stops every node and removes their directories', async () => {
    const cluster = await startThrowawayCitus({ prefer: 'local', workers: 1 });
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
      const c = await startThrowawayCitus({ prefer: 'local', workers: 1 });
      console.log(JSON.stringify(c.directories));
      setInterval(() => {}, 1000);`;
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const directories = await new Promise<string[]>((resolve) =>
      child.stdout.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()) as string[])),
    );
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

if (!dockerAnswers)
  console.log(`skipped: the throwaway Citus cluster of ${CITUS_IMAGE} containers needs a Docker engine, and none answers on this machine`);

describe.skipIf(!dockerAnswers)(`a throwaway Citus cluster of ${CITUS_IMAGE} containers`, () => {
  it('registers the workers by their aliases, routes a tenant to one worker, makes databases on every node, and leaves nothing behind', async () => {
    const cluster = await startThrowawayCitus({ prefer: 'docker' });
    try {
      expect(cluster.kind).toBe('testcontainers');
      expect(cluster.directories).toEqual([]);
      expect(cluster.majorVersion).toBe(15);
      const nodes = await query<{ name: string; port: number }>(
        cluster.url,
        'SELECT node_name AS name, node_port::int AS port FROM citus_get_active_worker_nodes() ORDER BY 1',
      );
      expect(nodes).toEqual([
        { name: 'worker1', port: 5432 },
        { name: 'worker2', port: 5432 },
      ]);
      expect(cluster.workerUrls).toHaveLength(2);
      for (const url of cluster.workerUrls) {
        const [{ n }] = (await query<{ n: number }>(url, "SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'citus'")) as [
          { n: number },
        ];
        expect(n).toBe(1);
      }
      await query(
        cluster.url,
        `CREATE TABLE accounts (org int NOT NULL, id int NOT NULL, PRIMARY KEY (org, id));
        SELECT create_distributed_table('accounts', 'org');
        INSERT INTO accounts SELECT g % 10, g FROM generate_series(1, 200) g;`,
      );
      const plan = (await query<{ 'QUERY PLAN': string }>(cluster.url, 'EXPLAIN SELECT * FROM accounts WHERE org = 3'))
        .map((r) => r['QUERY PLAN'])
        .join('\n');
      expect(plan).toMatch(/Task Count: 1\b/);
      expect(plan).toMatch(/Node: host=worker[12] port=5432/);

      const url = await cluster.createDatabase('second db');
      const [{ workers }] = (await query<{ workers: number }>(
        url,
        'SELECT count(*)::int AS workers FROM citus_get_active_worker_nodes()',
      )) as [{ workers: number }];
      expect(workers).toBe(2);
      for (const workerUrl of cluster.workerUrls) {
        const [{ n }] = (await query<{ n: number }>(
          workerUrl,
          "SELECT count(*)::int AS n FROM pg_database WHERE datname = 'second db'",
        )) as [{ n: number }];
        expect(n).toBe(1);
      }
    } finally {
      await cluster.close();
    }
    for (const url of [cluster.url, ...cluster.workerUrls]) await expect(query(url, 'SELECT 1')).rejects.toThrow();
  }, 600_000);
});
