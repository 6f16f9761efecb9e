/**
 * What the throwaway servers and clusters share: the Docker probe, the servers started from the
 * local binaries (initdb, pg_ctl) in temporary directories on free ports, and their removal on
 * close, at process exit and on SIGINT/SIGTERM/SIGHUP.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { runTool } from './pg-tools.js';

export interface PostgresBinaries {
  bin: string;
  majorVersion: number;
}

/** TENANTIFY_THROWAWAY (or an option) read as a path to force. */
export function parsePrefer(value: string | undefined): 'docker' | 'local' | undefined {
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

/** A server started from the local binaries, in its own temporary directory. */
export interface LocalServer {
  directory: string;
  dataDirectory: string;
  bin: string;
  owner: { uid: number; gid: number } | undefined;
  stopped: boolean;
}

const liveServers = new Set<LocalServer>();
/** What else to remove on a signal: containers, whose removal cannot be synchronous. */
const liveCleanups = new Set<() => Promise<void>>();
let exitHooksInstalled = false;

/**
 * Runs `cleanup` on SIGINT/SIGTERM/SIGHUP (awaited, at most 30 s, before the process dies of the
 * signal), until the returned function is called. At a plain exit nothing asynchronous can run:
 * Testcontainers' reaper removes the containers it started once the process is gone.
 */
export function removeOnSignal(cleanup: () => Promise<void>): () => void {
  installExitHooks();
  liveCleanups.add(cleanup);
  return () => {
    liveCleanups.delete(cleanup);
  };
}

/** One server from the local binaries in its own temporary directory, on a free port; removed on failure. */
export async function startLocalNode(
  binaries: PostgresBinaries,
  prefix: string,
  extraSettings: string[],
): Promise<{ server: LocalServer; port: number }> {
  installExitHooks();
  const directory = mkdtempSync(join(tmpdir(), prefix));
  const owner = process.getuid?.() === 0 ? unprivilegedOwner() : undefined;
  const server: LocalServer = { directory, dataDirectory: join(directory, 'data'), bin: binaries.bin, owner, stopped: false };
  liveServers.add(server);
  try {
    if (owner) chownSync(directory, owner.uid, owner.gid);
    await run(server, 'initdb', [
      '-D',
      server.dataDirectory,
      '-U',
      'postgres',
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
      '--no-instructions',
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
      `-p ${port}`,
      `-k ${server.directory}`,
      '-c listen_addresses=127.0.0.1',
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c max_connections=200',
      '-c max_locks_per_transaction=256',
      ...extraSettings,
    ].join(' ');
    try {
      await run(server, 'pg_ctl', [
        'start',
        '-w',
        '-t',
        '60',
        '-D',
        server.dataDirectory,
        '-l',
        join(server.directory, 'server.log'),
        '-o',
        settings,
      ]);
      return port;
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

/** Stops the server (immediate) and removes its directory; again is a no-op. */
export function stopLocal(server: LocalServer): void {
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
      const cleanups = [...liveCleanups].map((cleanup) => cleanup().catch(() => undefined));
      liveCleanups.clear();
      // Leave the rest to whoever else listens; alone, die of the signal as if we were not here.
      const die = (): void => {
        if (process.listenerCount(signal) === 1) {
          process.removeListener(signal, onSignal);
          process.kill(process.pid, signal);
        }
      };
      if (cleanups.length === 0) {
        die();
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 30_000);
      });
      void Promise.race([Promise.all(cleanups), deadline]).then(() => {
        clearTimeout(timer);
        die();
      });
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
