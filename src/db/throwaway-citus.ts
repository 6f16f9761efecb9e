/**
 * A throwaway Citus cluster for tests and `rehearse --citus`: a coordinator and N workers
 * (default 2), started the way one throwaway PostgreSQL is (throwaway.ts):
 *   1. when a Docker engine answers, containers of a pinned citusdata/citus image on a Docker
 *      network of their own, through Testcontainers;
 *   2. else servers from the local binaries with the Citus extension, each in a temporary
 *      directory on a free port.
 * TENANTIFY_THROWAWAY=docker|local forces a path. Whatever was started is removed on close, at
 * process exit (containers: by Testcontainers' reaper) and on SIGINT/SIGTERM/SIGHUP.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pg from 'pg';
import type { StartedNetwork, StartedTestContainer } from 'testcontainers';
import { UsageError } from '../errors.js';
import { runtimeImport } from '../runtime-import.js';
import { createScratchDatabase } from './scratch-database.js';
import {
  dockerEngineAnswers,
  findPostgresBinaries,
  parsePrefer,
  removeOnSignal,
  startLocalNode,
  stopLocal,
  type PostgresBinaries,
} from './throwaway-nodes.js';

/**
 * The Docker path's image: Citus 13.2.0 on PostgreSQL 15 (15.14), the major of the binaries the
 * local path is installed for. citusdata/docker builds it from postgres-15/Dockerfile
 * (VERSION=13.2.0, FROM postgres:15.14-bookworm) and tags each release `<version>-pg15`
 * (citusdata/tools, packaging_automation/publish_docker.py).
 */
export const CITUS_IMAGE = 'citusdata/citus:13.2.0-pg15';

export type ThrowawayCitusKind = 'testcontainers' | 'local';

export interface ThrowawayCitus {
  readonly kind: ThrowawayCitusKind;
  /** The coordinator's `postgres` database, superuser: where distributed tables are made and queried. */
  readonly url: string;
  /** Each worker's `postgres` database as this process reaches it, in the order the workers were added. */
  readonly workerUrls: readonly string[];
  readonly majorVersion: number;
  /** Every node's temporary directory, the coordinator's first (`local`; none for containers). */
  readonly directories: readonly string[];
  /**
   * A new database on every node, with the extension and the nodes registered in it (Citus
   * keeps its metadata per database): its URL on the coordinator.
   */
  createDatabase(name: string): Promise<string>;
  close(): Promise<void>;
}

export interface ThrowawayCitusOptions {
  /** Workers beside the coordinator. Default 2. */
  workers?: number;
  /** citus.shard_count for new distributed tables. Default 4 (Citus's own default, 32, only slows small tests down). */
  shardCount?: number;
  /** Force a path instead of probing: `docker` or `local`. Also TENANTIFY_THROWAWAY. */
  prefer?: 'docker' | 'local';
  /** The Docker path's image. Default CITUS_IMAGE. */
  image?: string;
  log?: (line: string) => void;
}

export interface CitusPathProbe {
  prefer: 'docker' | 'local' | undefined;
  dockerAnswers: () => Promise<boolean>;
  localCitus: () => { library: string } | { missing: string };
}

const installCitusHint =
  'install Citus into this PostgreSQL (as root: `bash shared/citus/install.sh`, or the citusdata packages), then try again';

/** The choice of path, separate from starting anything so it can be tested on its own. */
export async function chooseCitusPath(probe: CitusPathProbe): Promise<{ kind: ThrowawayCitusKind; reason: string }> {
  if (probe.prefer === 'docker') return { kind: 'testcontainers', reason: 'Docker was asked for' };
  if (probe.prefer !== 'local' && (await probe.dockerAnswers())) return { kind: 'testcontainers', reason: 'a Docker engine answers' };
  const local = probe.localCitus();
  if ('library' in local) {
    return {
      kind: 'local',
      reason: probe.prefer === 'local' ? 'local binaries were asked for' : 'no Docker engine answers; Citus is installed locally',
    };
  }
  if (probe.prefer === 'local') throw new UsageError(local.missing, { code: 'citus-missing', hint: installCitusHint });
  throw new UsageError(`no way to start a throwaway Citus cluster: no Docker engine answers, and ${local.missing}`, {
    code: 'citus-missing',
    hint: `start Docker (the cluster then runs from the ${CITUS_IMAGE} image), or ${installCitusHint}`,
  });
}

/**
 * Starts a coordinator and `workers` workers (Citus preloaded on each), registers the workers
 * with the coordinator, and returns the coordinator's URL. Everything is removed on close, at
 * process exit and on SIGINT/SIGTERM, like one server.
 */
export async function startThrowawayCitus(options: ThrowawayCitusOptions = {}): Promise<ThrowawayCitus> {
  const { kind, reason } = await chooseCitusPath({
    prefer: options.prefer ?? parsePrefer(process.env['TENANTIFY_THROWAWAY']),
    dockerAnswers: () => dockerEngineAnswers(),
    localCitus: () => findCitus(),
  });
  const workers = options.workers ?? 2;
  const settings = ['shared_preload_libraries=citus', `citus.shard_count=${options.shardCount ?? 4}`];
  if (kind === 'testcontainers') {
    const image = options.image ?? CITUS_IMAGE;
    options.log?.(`throwaway Citus cluster: a coordinator and ${workers} worker(s) from ${image} (${reason})`);
    return startContainers(image, workers, settings);
  }
  const binaries = findPostgresBinaries() as PostgresBinaries;
  options.log?.(`throwaway Citus cluster: a coordinator and ${workers} worker(s) from ${binaries.bin} (${reason})`);
  return startLocalCluster(binaries, workers, settings);
}

/** Owns a throwaway Citus cluster for the callback's life, and removes it whatever happens. */
export async function withThrowawayCitus<T>(options: ThrowawayCitusOptions, fn: (cluster: ThrowawayCitus) => Promise<T>): Promise<T> {
  const cluster = await startThrowawayCitus(options);
  try {
    return await fn(cluster);
  } finally {
    await cluster.close();
  }
}

/** The Citus extension's library and control file for these binaries, or why they are missing. */
export function findCitus(binaries: PostgresBinaries | undefined = findPostgresBinaries()): { library: string } | { missing: string } {
  if (!binaries) return { missing: 'initdb and pg_ctl were not found on PATH nor under /usr/lib/postgresql/*/bin' };
  // The installation's own directory, not a symlink's (/usr/local/bin/pg_ctl -> /usr/lib/postgresql/15/bin/pg_ctl).
  let bin = binaries.bin;
  try {
    bin = dirname(realpathSync(join(binaries.bin, 'pg_ctl')));
  } catch {
    // keep the directory found
  }
  const pgConfig = (flag: string, fallback: string): string => {
    const out = spawnSync(join(bin, 'pg_config'), [flag], { encoding: 'utf8' });
    return out.status === 0 && out.stdout.trim() ? out.stdout.trim() : fallback;
  };
  const library = join(pgConfig('--pkglibdir', join(bin, '..', 'lib')), 'citus.so');
  const control = join(pgConfig('--sharedir', `/usr/share/postgresql/${binaries.majorVersion}`), 'extension', 'citus.control');
  if (!existsSync(library))
    return { missing: `the Citus extension is not installed for PostgreSQL ${binaries.majorVersion}: no ${library}` };
  if (!existsSync(control))
    return { missing: `the Citus extension is not installed for PostgreSQL ${binaries.majorVersion}: no ${control}` };
  return { library };
}

// ---------------------------------------------------------------------------------------
// Registering the nodes, the same on both paths

interface ClusterNode {
  /** A database of the node, as this process reaches it. */
  url(database: string): string;
  /** Where the other nodes reach it. */
  host: string;
  port: number;
}

/** The extension on every node, then the coordinator and the workers registered on the coordinator. */
async function register(nodes: readonly ClusterNode[], database: string): Promise<void> {
  const [coordinator, ...workers] = nodes as [ClusterNode, ...ClusterNode[]];
  // The extension on every node first: the coordinator reaches into the workers when they are added.
  await Promise.all(nodes.map((n) => runSql(n.url(database), ['CREATE EXTENSION IF NOT EXISTS citus'])));
  await runSql(coordinator.url(database), [
    `SELECT citus_set_coordinator_host(${literal(coordinator.host)}, ${coordinator.port})`,
    ...workers.map((w) => `SELECT citus_add_node(${literal(w.host)}, ${w.port})`),
  ]);
}

/** CREATE DATABASE on every node (Citus does not carry it to the workers; a scratch database's strategy), registered as above. */
async function createDatabaseOnEveryNode(nodes: readonly ClusterNode[], name: string, template?: string): Promise<string> {
  await Promise.all(
    nodes.map(async (n) => {
      const client = new pg.Client({ connectionString: n.url('postgres') });
      await client.connect();
      try {
        await createScratchDatabase(client, name, template);
      } finally {
        await client.end();
      }
    }),
  );
  if (!template) await register(nodes, name);
  return (nodes[0] as ClusterNode).url(encodeURIComponent(name));
}

/** The database every node copies from the second database of a cluster on (see databaseMaker). */
const TEMPLATE = 'tenantify_citus_template';

/**
 * A cluster's `createDatabase`. The extension and the nodes' registration cost about 1.4 s a
 * database (three nodes, measured on the local path), a copy of a database that has them about
 * 0.2 s, and the copy works as one registered afresh (its distributed tables, its metadata on
 * the workers, the nodes' health checks): so the first database is made as before (a rehearsal
 * makes one and no more), and the second makes a template on every node that it and the next
 * ones copy. Citus's maintenance daemon keeps a session on every database with the extension,
 * and a database copies only with no session on it: the template takes none. One database at a
 * time (a template, template1 too, refuses a second copy at once).
 */
function databaseMaker(nodes: readonly ClusterNode[]): (name: string) => Promise<string> {
  let made = 0;
  let template: Promise<void> | undefined;
  let previous: Promise<unknown> = Promise.resolve();
  const closedTemplate = async (): Promise<void> => {
    await createDatabaseOnEveryNode(nodes, TEMPLATE);
    await Promise.all(
      nodes.map((n) =>
        runSql(n.url('postgres'), [
          `ALTER DATABASE ${TEMPLATE} ALLOW_CONNECTIONS false`,
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${TEMPLATE}'`,
        ]),
      ),
    );
  };
  return (name) => {
    const first = made++ === 0;
    const copied = previous.then(async () => {
      if (first) return createDatabaseOnEveryNode(nodes, name);
      template ??= closedTemplate();
      await template;
      return createDatabaseOnEveryNode(nodes, name, TEMPLATE);
    });
    previous = copied.catch(() => undefined);
    return copied;
  };
}

function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

async function runSql(url: string, statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------
// Local binaries: each node a server in its own temporary directory

async function startLocalCluster(binaries: PostgresBinaries, workers: number, settings: string[]): Promise<ThrowawayCitus> {
  const prefixes = Array.from({ length: workers + 1 }, (_, i) => (i === 0 ? 'tenantify-citus-c-' : `tenantify-citus-w${i}-`));
  const started = await Promise.allSettled(
    prefixes.map((prefix) =>
      startLocalNode(
        binaries,
        prefix,
        settings.map((s) => `-c ${s}`),
      ),
    ),
  );
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stopAll = (): void => {
    for (const { server } of servers) stopLocal(server);
  };
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    stopAll();
    throw failed.reason;
  }
  const nodes: ClusterNode[] = servers.map(({ port }) => ({
    url: (database) => `postgresql://postgres@127.0.0.1:${port}/${database}`,
    host: '127.0.0.1',
    port,
  }));
  try {
    await register(nodes, 'postgres');
  } catch (error) {
    stopAll();
    throw error;
  }
  return {
    kind: 'local',
    url: (nodes[0] as ClusterNode).url('postgres'),
    workerUrls: nodes.slice(1).map((n) => n.url('postgres')),
    majorVersion: binaries.majorVersion,
    directories: servers.map(({ server }) => server.directory),
    createDatabase: databaseMaker(nodes),
    close: async () => stopAll(),
  };
}

// ---------------------------------------------------------------------------------------
// Docker: each node a container on the cluster's own network, reached by its alias

async function startContainers(image: string, workers: number, settings: string[]): Promise<ThrowawayCitus> {
  const { GenericContainer, Network, Wait } = await runtimeImport('testcontainers', () => import('testcontainers'));
  // The nodes reach each other with PGPASSWORD, which the image keeps in the server's environment.
  const password = randomBytes(12).toString('hex');
  const aliases = ['coordinator', ...Array.from({ length: workers }, (_, i) => `worker${i + 1}`)];
  const network: StartedNetwork = await new Network().start();
  const containers: StartedTestContainer[] = [];
  let closed = false;
  let forget = (): void => {};
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    forget();
    // stop() removes the container too; the network goes once nothing is attached to it.
    await Promise.allSettled(containers.map((c) => c.stop()));
    await network.stop();
  };
  forget = removeOnSignal(close);
  const started = await Promise.allSettled(
    aliases.map((alias) =>
      new GenericContainer(image)
        .withNetwork(network)
        .withNetworkAliases(alias)
        .withEnvironment({ POSTGRES_PASSWORD: password, PGPASSWORD: password, PGUSER: 'postgres' })
        .withExposedPorts(5432)
        .withTmpFs({ '/var/lib/postgresql/data': 'rw' })
        .withCommand(['postgres', ...[...containerSettings, ...settings].flatMap((s) => ['-c', s])])
        // The image's entrypoint starts the server once to initialise it, then for good.
        .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
        .withStartupTimeout(180_000)
        .start(),
    ),
  );
  for (const s of started) if (s.status === 'fulfilled') containers.push(s.value);
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await close().catch(() => undefined);
    throw failed.reason;
  }
  const nodes: ClusterNode[] = containers.map((c, i) => ({
    url: (database) => `postgresql://postgres:${password}@${c.getHost()}:${c.getMappedPort(5432)}/${database}`,
    host: aliases[i] as string,
    port: 5432,
  }));
  let majorVersion: number;
  try {
    majorVersion = await serverMajor((nodes[0] as ClusterNode).url('postgres'));
    await register(nodes, 'postgres');
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
  return {
    kind: 'testcontainers',
    url: (nodes[0] as ClusterNode).url('postgres'),
    workerUrls: nodes.slice(1).map((n) => n.url('postgres')),
    majorVersion,
    directories: [],
    createDatabase: databaseMaker(nodes),
    close,
  };
}

/** What the local path's servers are started with too (throwaway-nodes.ts), for the same speed and room. */
const containerSettings = [
  'fsync=off',
  'synchronous_commit=off',
  'full_page_writes=off',
  'max_connections=200',
  'max_locks_per_transaction=256',
];

async function serverMajor(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>('SHOW server_version_num');
    return Math.floor(Number(rows[0]?.n) / 10000);
  } finally {
    await client.end();
  }
}
