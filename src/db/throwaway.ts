/**
 * A disposable PostgreSQL for tests, `rehearse` and the demo. The contract's order:
 *   1. an explicit URL,
 *   2. Testcontainers, when a Docker engine answers,
 *   3. the local binaries (initdb, pg_ctl) in a temporary directory on a free port.
 * Whatever it made is removed on close, at process exit, and on SIGINT/SIGTERM.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import pg from 'pg';
import { UsageError } from '../errors.js';
import { runtimeImport } from '../runtime-import.js';
import { runTool } from './pg-tools.js';

export type ThrowawayKind = 'explicit' | 'testcontainers' | 'local';

export interface ThrowawayPostgres {
  readonly kind: ThrowawayKind;
  /** Connection string of the `postgres` database, superuser. */
  readonly url: string;
  /** Server major version, when known. */
  readonly majorVersion: number | undefined;
  /** Only for `local`: the temporary directory holding the data directory and the socket. */
  readonly directory: string | undefined;
  close(): Promise<void>;
}

export interface ThrowawayOptions {
  /** An explicit server to use as is (never stopped by close). */
  url?: string;
  /** Force a path instead of probing: `docker` or `local`. Also TENANTIFY_THROWAWAY. */
  prefer?: 'docker' | 'local';
  /** Major version wanted from Testcontainers (image postgres:N). Default 15. */
  majorVersion?: number;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
}

export interface PathProbe {
  explicitUrl: string | undefined;
  prefer: 'docker' | 'local' | undefined;
  dockerAnswers: () => Promise<boolean>;
  localBinaries: () => PostgresBinaries | undefined;
}

export interface PostgresBinaries {
  bin: string;
  majorVersion: number;
}

/** The contract's choice, separate from starting anything so it can be tested on its own. */
export async function choosePath(probe: PathProbe): Promise<{ kind: ThrowawayKind; reason: string }> {
  if (probe.explicitUrl) return { kind: 'explicit', reason: 'an explicit URL was given' };
  if (probe.prefer === 'local') return { kind: 'local', reason: 'local binaries were asked for' };
  if (probe.prefer === 'docker') return { kind: 'testcontainers', reason: 'Docker was asked for' };
  if (await probe.dockerAnswers()) return { kind: 'testcontainers', reason: 'a Docker engine answers' };
  if (probe.localBinaries()) return { kind: 'local', reason: 'no Docker engine answers; local PostgreSQL binaries found' };
  throw new Error(
    'no way to start a throwaway PostgreSQL: no Docker engine answers and initdb/pg_ctl were not found ' +
      '(install PostgreSQL, e.g. `apt-get install -y postgresql`, or start Docker, or set TENANTIFY_TEST_DATABASE_URL)',
  );
}

export async function startThrowawayPostgres(options: ThrowawayOptions = {}): Promise<ThrowawayPostgres> {
  const prefer = options.prefer ?? parsePrefer(process.env['TENANTIFY_THROWAWAY']);
  const { kind, reason } = await choosePath({
    explicitUrl: options.url,
    prefer,
    dockerAnswers: () => dockerEngineAnswers(),
    localBinaries: findPostgresBinaries,
  });
  options.log?.(`throwaway PostgreSQL: ${kind} (${reason})`);
  if (kind === 'explicit') {
    return { kind, url: options.url as string, majorVersion: undefined, directory: undefined, close: async () => {} };
  }
  if (kind === 'testcontainers') return startContainer(options.majorVersion ?? 15);
  return startLocal();
}

/** Owns a throwaway server for the callback's life, and removes it whatever happens. */
export async function withThrowawayPostgres<T>(
  options: ThrowawayOptions,
  fn: (pg: ThrowawayPostgres) => Promise<T>,
): Promise<T> {
  const pg = await startThrowawayPostgres(options);
  try {
    return await fn(pg);
  } finally {
    await pg.close();
  }
}

function parsePrefer(value: string | undefined): 'docker' | 'local' | undefined {
  if (value === 'docker' || value === 'local') return value;
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Docker

/** True when a Docker engine answers /_ping within the timeout (DOCKER_HOST or the default socket). */
export function dockerEngineAnswers(timeoutMs = 1500): Promise<boolean> {
  const dockerHost = process.env['DOCKER_HOST'];
  let target: { socketPath: string } | { host: string; port: number };
  if (!dockerHost || dockerHost.startsWith('unix://')) {
    const socketPath = dockerHost ? dockerHost.slice('unix://'.length) : '/var/run/docker.sock';
    if (!existsSync(socketPath)) return Promise.resolve(false);
    target = { socketPath };
  } else if (dockerHost.startsWith('tcp://')) {
    const u = new URL(dockerHost.replace(/^tcp:/, 'http:'));
    target = { host: u.hostname, port: Number(u.port || 2375) };
  } else {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const req = request({ ...target, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function startContainer(majorVersion: number): Promise<ThrowawayPostgres> {
  const { GenericContainer, Wait } = await runtimeImport('testcontainers', () => import('testcontainers'));
  const password = randomBytes(12).toString('hex');
  const container = await new GenericContainer(`postgres:${majorVersion}`)
    .withEnvironment({ POSTGRES_PASSWORD: password })
    .withExposedPorts(5432)
    .withTmpFs({ '/var/lib/postgresql/data': 'rw' })
    .withCommand(['postgres', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'])
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start();
  const url = `postgresql://postgres:${password}@${container.getHost()}:${container.getMappedPort(5432)}/postgres`;
  let closed = false;
  return {
    kind: 'testcontainers',
    url,
    majorVersion,
    directory: undefined,
    close: async () => {
      if (closed) return;
      closed = true;
      await container.stop();
    },
  };
}

// ---------------------------------------------------------------------------------------
// A Citus cluster: a coordinator and N workers, each a local server as above

export interface ThrowawayCitus {
  readonly kind: 'local';
  /** The coordinator's `postgres` database, superuser: where distributed tables are made and queried. */
  readonly url: string;
  /** Each worker's `postgres` database, in the order the workers were added. */
  readonly workerUrls: readonly string[];
  readonly majorVersion: number;
  /** Every node's temporary directory, the coordinator's first. */
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
  log?: (line: string) => void;
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
  if (!existsSync(library)) return { missing: `the Citus extension is not installed for PostgreSQL ${binaries.majorVersion}: no ${library}` };
  if (!existsSync(control)) return { missing: `the Citus extension is not installed for PostgreSQL ${binaries.majorVersion}: no ${control}` };
  return { library };
}

/**
 * Starts a coordinator and `workers` workers from the local binaries (Citus preloaded on
 * each), registers the workers with the coordinator, and returns the coordinator's URL.
 * Everything is removed on close, at process exit and on SIGINT/SIGTERM, like one server.
 * Only local binaries for now: a cluster of `citusdata/citus` containers is not started here.
 */
export async function startThrowawayCitus(options: ThrowawayCitusOptions = {}): Promise<ThrowawayCitus> {
  const binaries = findPostgresBinaries();
  const citus = findCitus(binaries);
  if ('missing' in citus || !binaries) {
    throw new UsageError(
      'missing' in citus ? citus.missing : 'no PostgreSQL binaries',
      { hint: 'install Citus into this PostgreSQL (as root: `bash shared/citus/install.sh`, or the citusdata packages), then try again' },
    );
  }
  const workers = options.workers ?? 2;
  const settings = ['-c shared_preload_libraries=citus', `-c citus.shard_count=${options.shardCount ?? 4}`];
  options.log?.(`throwaway Citus cluster: a coordinator and ${workers} worker(s) from ${binaries.bin}`);
  const started = await Promise.allSettled(Array.from({ length: workers + 1 }, (_, i) => startLocalNode(binaries, i === 0 ? 'tenantify-citus-c-' : `tenantify-citus-w${i}-`, settings)));
  const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stopAll = (): void => {
    for (const node of nodes) stopLocal(node.server);
  };
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    stopAll();
    throw failed.reason;
  }
  const [coordinator, ...workerNodes] = nodes as [{ server: LocalServer; port: number }, ...{ server: LocalServer; port: number }[]];
  const urlOf = (port: number, database = 'postgres'): string => `postgresql://postgres@127.0.0.1:${port}/${database}`;
  const register = async (database: string): Promise<void> => {
    // The extension on every node first: the coordinator reaches into the workers when they are added.
    await Promise.all(nodes.map((n) => runSql(urlOf(n.port, database), ['CREATE EXTENSION IF NOT EXISTS citus'])));
    await runSql(urlOf(coordinator.port, database), [
      `SELECT citus_set_coordinator_host('127.0.0.1', ${coordinator.port})`,
      ...workerNodes.map((w) => `SELECT citus_add_node('127.0.0.1', ${w.port})`),
    ]);
  };
  try {
    await register('postgres');
  } catch (error) {
    stopAll();
    throw error;
  }
  return {
    kind: 'local',
    url: urlOf(coordinator.port),
    workerUrls: workerNodes.map((w) => urlOf(w.port)),
    majorVersion: binaries.majorVersion,
    directories: nodes.map((n) => n.server.directory),
    createDatabase: async (name) => {
      const quoted = `"${name.replaceAll('"', '""')}"`;
      await Promise.all(nodes.map((n) => runSql(urlOf(n.port), [`CREATE DATABASE ${quoted}`])));
      await register(name);
      return urlOf(coordinator.port, encodeURIComponent(name));
    },
    close: async () => stopAll(),
  };
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
// Local binaries

/** initdb and pg_ctl on PATH, else the newest /usr/lib/postgresql/N/bin. */
export function findPostgresBinaries(): PostgresBinaries | undefined {
  const candidates: string[] = [];
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) candidates.push(dir);
  }
  const debianRoot = '/usr/lib/postgresql';
  if (existsSync(debianRoot)) {
    const versions = readdirSync(debianRoot)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const dir = join(debianRoot, v, 'bin');
      if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) candidates.push(dir);
    }
  }
  const bin = candidates[0];
  if (!bin) return undefined;
  const out = spawnSync(join(bin, 'pg_ctl'), ['--version'], { encoding: 'utf8' });
  const major = /(\d+)(?:\.\d+)?/.exec(out.stdout ?? '')?.[1];
  return { bin, majorVersion: Number(major ?? 0) };
}

interface LocalServer {
  directory: string;
  dataDirectory: string;
  bin: string;
  owner: { uid: number; gid: number } | undefined;
  stopped: boolean;
}

const liveServers = new Set<LocalServer>();
let exitHooksInstalled = false;

async function startLocal(): Promise<ThrowawayPostgres> {
  const binaries = findPostgresBinaries();
  if (!binaries) throw new Error('initdb and pg_ctl were not found on PATH nor under /usr/lib/postgresql/*/bin');
  const { server, port } = await startLocalNode(binaries, 'tenantify-pg-', []);
  return {
    kind: 'local',
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    majorVersion: binaries.majorVersion,
    directory: server.directory,
    close: async () => stopLocal(server),
  };
}

/** One server from the local binaries in its own temporary directory, on a free port; removed on failure. */
async function startLocalNode(binaries: PostgresBinaries, prefix: string, extraSettings: string[]): Promise<{ server: LocalServer; port: number }> {
  installExitHooks();
  const directory = mkdtempSync(join(tmpdir(), prefix));
  const owner = process.getuid?.() === 0 ? unprivilegedOwner() : undefined;
  const server: LocalServer = { directory, dataDirectory: join(directory, 'data'), bin: binaries.bin, owner, stopped: false };
  liveServers.add(server);
  try {
    if (owner) chownSync(directory, owner.uid, owner.gid);
    await run(server, 'initdb', [
      '-D', server.dataDirectory, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions',
    ]);
    const port = await startOnFreePort(server, extraSettings);
    return { server, port };
  } catch (error) {
    stopLocal(server);
    throw error;
  }
}

async function startOnFreePort(server: LocalServer, extraSettings: string[] = []): Promise<number> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const settings = [
      `-p ${port}`, `-k ${server.directory}`, '-c listen_addresses=127.0.0.1', '-c fsync=off', '-c synchronous_commit=off',
      '-c full_page_writes=off', '-c max_connections=200', '-c max_locks_per_transaction=256', ...extraSettings,
    ].join(' ');
    try {
      await run(server, 'pg_ctl', ['start', '-w', '-t', '60', '-D', server.dataDirectory, '-l', join(server.directory, 'server.log'), '-o', settings]);
      return port;
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

function stopLocal(server: LocalServer): void {
  if (server.stopped) return;
  server.stopped = true;
  liveServers.delete(server);
  if (existsSync(join(server.dataDirectory, 'postmaster.pid'))) {
    const result = spawnSync(join(server.bin, 'pg_ctl'), ['stop', '-m', 'immediate', '-w', '-t', '30', '-D', server.dataDirectory], {
      stdio: 'ignore',
      ...(server.owner ?? {}),
    });
    if (result.status !== 0) killPostmaster(server);
  }
  rmSync(server.directory, { recursive: true, force: true });
}

function killPostmaster(server: LocalServer): void {
  try {
    const pid = Number(readFileSync(join(server.dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (pid > 0) process.kill(pid, 'SIGQUIT');
  } catch {
    // already gone
  }
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', () => {
    for (const server of [...liveServers]) stopLocal(server);
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      for (const server of [...liveServers]) stopLocal(server);
      // Leave the rest to whoever else listens; alone, die of the signal as if we were not here.
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

function unprivilegedOwner(): { uid: number; gid: number } {
  // initdb refuses to run as root; the server runs as `postgres` (or `nobody`) instead.
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n');
  for (const name of ['postgres', 'nobody']) {
    const entry = passwd.find((line) => line.startsWith(`${name}:`));
    if (entry) {
      const [, , uid, gid] = entry.split(':');
      return { uid: Number(uid), gid: Number(gid) };
    }
  }
  throw new Error('running as root and no unprivileged user (postgres or nobody) exists to run the throwaway server');
}

async function run(server: LocalServer, program: string, args: string[]): Promise<void> {
  await runTool({
    path: join(server.bin, program),
    args,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C', TZ: 'UTC' },
    cwd: server.directory,
    user: server.owner,
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}
