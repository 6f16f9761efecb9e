/**
 * A disposable PostgreSQL for tests, `rehearse` and the demo. The contract's order:
 *   1. an explicit URL,
 *   2. Testcontainers, when a Docker engine answers,
 *   3. the local binaries (initdb, pg_ctl) in a temporary directory on a free port.
 * Whatever it made is removed on close, at process exit, and on SIGINT/SIGTERM.
 * A Citus cluster (a coordinator and N workers) is started the same two ways: throwaway-citus.ts.
 */
import { randomBytes } from 'node:crypto';
import { runtimeImport } from '../runtime-import.js';
import {
  dockerEngineAnswers,
  findPostgresBinaries,
  parsePrefer,
  startLocalNode,
  stopLocal,
  type PostgresBinaries,
} from './throwaway-nodes.js';

export { dockerEngineAnswers, findPostgresBinaries, type PostgresBinaries } from './throwaway-nodes.js';
export {
  CITUS_IMAGE,
  chooseCitusPath,
  findCitus,
  startThrowawayCitus,
  withThrowawayCitus,
  type CitusPathProbe,
  type ThrowawayCitus,
  type ThrowawayCitusOptions,
} from './throwaway-citus.js';

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
export async function withThrowawayPostgres<T>(options: ThrowawayOptions, fn: (pg: ThrowawayPostgres) => Promise<T>): Promise<T> {
  const pg = await startThrowawayPostgres(options);
  try {
    return await fn(pg);
  } finally {
    await pg.close();
  }
}

// ---------------------------------------------------------------------------------------
// Docker

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
// Local binaries

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
