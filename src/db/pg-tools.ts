/**
 * pg_dump, pg_restore and psql (and the throwaway server's initdb and pg_ctl) as child
 * processes: the one module that starts them. Credentials travel in the child's environment
 * (PGPASSWORD...), never in an argument list that `ps` would show.
 *
 * What flows between the tools and the database is bytes, never decoded: a dump is streamed
 * from pg_restore into psql with back-pressure, so memory stays flat whatever the table's
 * size, and a multi-byte character that straddles two pipe reads arrives whole. Text is made
 * only of what is small and read whole (stderr for messages).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { cacheDirectory, writeCacheFile } from '../cache-dir.js';
import { toolEnvironment } from './libpq.js';
import { redact } from './redact.js';

export type PgTool = 'pg_dump' | 'pg_restore' | 'psql';

/** The libpq environment for a connection URL (or the caller's PG* variables when there is none): see toolEnvironment. */
export function libpqEnvironment(url: string | undefined): NodeJS.ProcessEnv {
  return toolEnvironment(url);
}

/**
 * TENANTIFY_PG_BINDIR when set (only there), else the tool on PATH, else under
 * /usr/lib/postgresql/N/bin (newest first); with its major version.
 */
export function findPgTool(
  tool: PgTool,
  env: NodeJS.ProcessEnv = process.env,
): { path: string; major: number; version: string } | undefined {
  const bindir = env['TENANTIFY_PG_BINDIR'];
  const candidates = bindir
    ? [join(bindir, tool)]
    : (env['PATH'] ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((dir) => join(dir, tool));
  const root = '/usr/lib/postgresql';
  if (!bindir && existsSync(root)) {
    for (const v of readdirSync(root)
      .filter((d) => /^\d+$/.test(d))
      .sort((a, b) => Number(b) - Number(a)))
      candidates.push(join(root, v, 'bin', tool));
  }
  const key = `${tool}\0${bindir ?? ''}\0${env['PATH'] ?? ''}`;
  if (found.has(key)) return found.get(key);
  let result: { path: string; major: number; version: string } | undefined;
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    // Debian's pg_wrapper (a Perl script) costs ~100 ms a call; the versioned binaries below are the real thing.
    if (
      !bindir &&
      realpathSync(path).endsWith('pg_wrapper') &&
      candidates.some((c) => c.startsWith('/usr/lib/postgresql/') && existsSync(c))
    )
      continue;
    const version = toolVersion(path);
    if (version) {
      result = { path, ...version };
      break;
    }
  }
  found.set(key, result);
  return result;
}

const found = new Map<string, { path: string; major: number; version: string } | undefined>();

/**
 * What `<tool> --version` says, kept between runs in the cache directory (cache-dir.ts) by the
 * file's real path, size, inode and modification time: the answer changes only with the file,
 * and asking is a child process, ~35 ms of a short `apply`'s CPU (bench/small-apply.ts).
 */
function toolVersion(path: string): { major: number; version: string } | undefined {
  const file = realpathSync(path);
  const stat = statSync(file);
  const key = `${file}\0${stat.size}\0${stat.ino}\0${stat.mtimeMs}`;
  const versions = knownVersions();
  const known = versions.entries[key];
  if (known) return known;
  const out = spawnSync(path, ['--version'], { encoding: 'utf8' });
  const match = /(\d+)(?:\.(\d+))?/.exec(out.stdout ?? '');
  if (out.status !== 0 || !match) return undefined;
  const version = { major: Number(match[1]), version: match[0] };
  // Written with the tools still there: one that was removed (a test's stand-in) is forgotten.
  const kept = Object.entries(versions.entries).filter(([entry]) => existsSync(entry.split('\0')[0] as string));
  versions.entries = { ...Object.fromEntries(kept), [key]: version };
  if (versions.file) writeCacheFile(versions.file, JSON.stringify(versions.entries));
  return version;
}

let versionCache: { file: string | undefined; entries: Record<string, { major: number; version: string }> } | undefined;

function knownVersions(): NonNullable<typeof versionCache> {
  if (versionCache) return versionCache;
  const directory = cacheDirectory();
  const file = directory ? join(directory, 'tool-versions.json') : undefined;
  let entries: Record<string, { major: number; version: string }> = {};
  try {
    if (file) entries = JSON.parse(readFileSync(file, 'utf8')) as typeof entries;
  } catch {
    // none yet, or unreadable: asked again
  }
  versionCache = { file, entries };
  return versionCache;
}

/** A program to run: its path, arguments and environment (libpqEnvironment's, for the client tools). */
export interface ToolCommand {
  path: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run as this user (the throwaway server's programs when tenantify runs as root). */
  user?: { uid: number; gid: number } | undefined;
  /** Ends the program when aborted (SIGINT during a snapshot). */
  signal?: AbortSignal | undefined;
}

/** How one program failed: "exit 3", "killed by SIGSEGV", "could not start: ENOENT", with the end of its stderr. */
export interface ToolFailure {
  program: string;
  outcome: string;
  stderr: string;
  /** When it ended (performance.now()): of two that failed, the first is the cause. */
  at: number;
}

/** One or more programs failed; the message is one line per program, redacted. */
export class ToolError extends Error {
  constructor(readonly failures: ToolFailure[]) {
    super(failures.map(describeFailure).join('\n'));
    this.name = 'ToolError';
  }

  /** The line of stderr that says what went wrong (the first ERROR), for a one-line message. */
  get summary(): string {
    const first = this.failures[0];
    if (!first) return 'failed';
    const lines = first.stderr
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    const line = lines.find((l) => /\b(ERROR|FATAL|error):/.test(l)) ?? lines[lines.length - 1];
    return redact(line ? line.slice(0, 500) : `${first.program} failed (${first.outcome})`);
  }
}

function describeFailure(failure: ToolFailure): string {
  const stderr = failure.stderr.length > 2000 ? `...${failure.stderr.slice(-2000)}` : failure.stderr;
  return redact(`${failure.program} failed (${failure.outcome})${stderr ? `: ${stderr}` : ''}`);
}

/** stderr kept for messages: its last bytes only (a tool can be chatty), decoded once at the end. */
const stderrLimit = 8 * 1024;

class StderrTail {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private dropped = false;

  add(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.bytes - (this.chunks[0]?.length ?? 0) >= stderrLimit) {
      this.bytes -= (this.chunks.shift() as Buffer).length;
      this.dropped = true;
    }
  }

  text(): string {
    let all = Buffer.concat(this.chunks);
    if (all.length > stderrLimit) {
      all = all.subarray(all.length - stderrLimit);
      this.dropped = true;
    }
    // Cut where a character starts: skip UTF-8 continuation bytes left by the cut.
    let start = 0;
    if (this.dropped) while (start < all.length && ((all[start] as number) & 0xc0) === 0x80) start++;
    return `${this.dropped ? '...' : ''}${all.subarray(start).toString('utf8')}`.trim();
  }
}

interface Running {
  program: string;
  child: ChildProcess;
  stderr: StderrTail;
  /** Set when this module ended the process (the other side of a stream failed first). */
  killed: boolean;
  /** Settles (never rejects) once the process has exited and closed its output: undefined when it succeeded. */
  done: Promise<ToolFailure | undefined>;
}

function start(command: ToolCommand, stdin: 'pipe' | 'ignore', stdout: 'pipe' | 'ignore'): Running {
  const program = command.path.split('/').pop() ?? command.path;
  const child = spawn(command.path, command.args, {
    env: command.env,
    stdio: [stdin, stdout, 'pipe'],
    ...(command.cwd ? { cwd: command.cwd } : {}),
    ...(command.user ?? {}),
    ...(command.signal ? { signal: command.signal } : {}),
  });
  const stderr = new StderrTail();
  child.stderr?.on('data', (chunk: Buffer) => stderr.add(chunk));
  // A pipe the other side closed early is told by the exit codes, not by an unhandled EPIPE.
  child.stdin?.on('error', () => {});
  const done = new Promise<ToolFailure | undefined>((resolve) => {
    child.once('error', (error) => resolve({ program, outcome: `could not start: ${error.message}`, stderr: '', at: performance.now() }));
    child.once('close', (code, signal) => {
      if (code === 0) resolve(undefined);
      else resolve({ program, outcome: signal ? `killed by ${signal}` : `exit ${code}`, stderr: stderr.text(), at: performance.now() });
    });
  });
  return { program, child, stderr, killed: false, done };
}

function kill(running: Running): void {
  if (running.child.exitCode !== null || running.child.signalCode !== null) return;
  running.killed = true;
  running.child.kill('SIGKILL');
}

/**
 * Runs a program to its end, with `input` on its stdin when given. Its stdout comes back as
 * bytes, whole: only for small outputs (a few views' definitions, --version); a dump goes to
 * a file (-f) or through streamThrough. Throws ToolError when it fails.
 */
export async function runTool(command: ToolCommand, input?: Buffer | string): Promise<{ stdout: Buffer; stderr: string }> {
  const running = start(command, input === undefined ? 'ignore' : 'pipe', 'pipe');
  const stdout: Buffer[] = [];
  running.child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
  if (input !== undefined) running.child.stdin?.end(input);
  const failure = await running.done;
  if (failure) throw new ToolError([failure]);
  return { stdout: Buffer.concat(stdout), stderr: running.stderr.text() };
}

/**
 * `source | sink`, with `before` and `after` around the source's output: the sink (psql)
 * reads `before`, then the source's stdout (pg_dump, pg_restore) as it comes, then `after`.
 * Bytes throughout, never decoded, with back-pressure: a slow sink slows the source, and
 * memory holds a few pipe buffers whatever the size of the stream.
 *
 * `after` is written, and the sink's input ended, only once the source has exited 0. When the
 * source fails, the sink is killed before its input ends: a psql that commits at the end of
 * its input (--single-transaction, or a COMMIT in `after`) never sees that end, and the
 * server rolls its transaction back when the connection drops. When the sink fails (psql
 * stops at an error), the source is killed. Throws ToolError naming the program that failed
 * first; one killed here because of the other is not named.
 */
export async function streamThrough(
  source: ToolCommand,
  sink: ToolCommand,
  around: { before?: Buffer | string; after?: Buffer | string } = {},
): Promise<void> {
  const to = start(sink, 'pipe', 'ignore');
  const from = start(source, 'ignore', 'pipe');
  const sourceOutput = from.child.stdout;
  const sinkInput = to.child.stdin;
  if (!sourceOutput || !sinkInput) throw new Error('the tools were started without pipes');
  let sourceFailure: ToolFailure | undefined;
  async function* feed(): AsyncGenerator<Buffer> {
    if (around.before !== undefined) yield Buffer.from(around.before);
    for await (const chunk of sourceOutput as AsyncIterable<Buffer>) yield chunk;
    sourceFailure = await from.done;
    if (sourceFailure) {
      kill(to);
      throw new ToolError([sourceFailure]);
    }
    if (around.after !== undefined) yield Buffer.from(around.after);
  }
  // The sink failing first shows as an error writing to its input (EPIPE): its exit says why.
  const streamed = await pipeline(feed, sinkInput).then(
    () => undefined,
    (error: unknown) => error,
  );
  if (streamed !== undefined) {
    kill(from);
    sourceOutput.destroy();
  }
  const [sinkFailure, sourceEnd] = await Promise.all([to.done, from.done]);
  sourceFailure ??= sourceEnd;
  const failures = [...(sourceFailure && !from.killed ? [sourceFailure] : []), ...(sinkFailure && !to.killed ? [sinkFailure] : [])].sort(
    (a, b) => a.at - b.at,
  );
  if (failures.length > 0) throw new ToolError(failures);
  if (streamed !== undefined) {
    throw new ToolError([
      { program: to.program, outcome: `its input broke: ${(streamed as Error).message}`, stderr: to.stderr.text(), at: performance.now() },
    ]);
  }
}
