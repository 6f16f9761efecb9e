/** Small helpers the benches share: timed child processes, medians, tables. Bench-only. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { findPgTool, libpqEnvironment } from '../src/db/pg-tools.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
export const resultsDir = join(repoRoot, 'bench', 'results');

export interface Timed {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
  /** User + system CPU of the process (and the children it waited for), when /usr/bin/time is there. */
  cpuMs?: number;
}

/**
 * Settings that change how every node process starts, and belong to no contender:
 * NODE_EXTRA_CA_CERTS makes node read and parse a CA bundle before it runs anything (~38 ms
 * on this machine, where it is set for every process; a DBA's machine seldom sets it), and
 * NODE_OPTIONS can load anything. The benches run their contenders without them unless
 * `--keep-node-env`; none of them needs TLS against the local throwaway server.
 */
const nodeStartSettings = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS'];

/** The environment for a contender: this one, without nodeStartSettings unless `keep`, plus `extra`. */
export function contenderEnv(keep: boolean, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (!keep) for (const key of nodeStartSettings) delete env[key];
  return { ...env, ...extra };
}

/** A line for a bench's report: which node start settings were set here and left out. */
export function nodeEnvNote(keep: boolean): string | undefined {
  const set = nodeStartSettings.filter((key) => process.env[key]);
  if (set.length === 0) return undefined;
  return keep
    ? `${set.join(' and ')} set here and kept (--keep-node-env): every node contender pays it at start`
    : `${set.join(' and ')} set here and left out for every contender (it slows every node process's start; --keep-node-env keeps it)`;
}

const timeBinary = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const timeMarker = '__bench_rusage__';

/**
 * Runs a command to its end and measures its wall time, from spawn to exit, and its CPU
 * time through /usr/bin/time when present (CPU time is what the tool itself costs; wall
 * time also holds waiting for the server and for the scheduler on a busy machine).
 */
export function timed(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const [program, argv] = timeBinary ? [timeBinary, ['-f', `${timeMarker} %U %S`, command, ...args]] : [command, args];
    const started = performance.now();
    const child = spawn(program, argv, {
      cwd: options.cwd ?? repoRoot,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - started;
      const match = new RegExp(`${timeMarker} ([\\d.]+) ([\\d.]+)\\s*$`).exec(stderr);
      if (!match) return resolve({ ms, code, stdout, stderr });
      const cpuMs = (Number(match[1]) + Number(match[2])) * 1000;
      resolve({ ms, code, stdout, stderr: stderr.slice(0, match.index), cpuMs });
    });
  });
}

/** Fails loudly when a timed run did not succeed: a fast failure is no figure. */
export function expectSuccess(label: string, run: Timed): void {
  if (run.code === 0) return;
  throw new Error(`${label} exited ${run.code}\n--- stdout\n${run.stdout.slice(-3000)}\n--- stderr\n${run.stderr.slice(-3000)}`);
}

/** A launcher to compare with bin/tenantify: `--variant LABEL=/path/to/bin/tenantify`'s value. */
export interface Variant {
  label: string;
  bin: string;
}

export function parseVariant(value: string | undefined): Variant {
  const [label, bin] = String(value).split('=');
  if (!label || !bin) throw new Error('--variant LABEL=/path/to/bin/tenantify');
  return { label, bin };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function fmt(ms: number, digits = 1): string {
  return ms.toFixed(digits);
}

/** A plain text table, right-aligned numbers. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function writeResult(name: string, document: unknown): string {
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, name);
  writeFileSync(file, `${JSON.stringify(document, null, 2)}\n`);
  return file;
}

/** `npm run build`, so `node bin/tenantify` runs the current src/. */
export function build(): void {
  const result = spawnSync('npm', ['run', 'build', '--silent'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) throw new Error(`npm run build failed (exit ${result.status})`);
}

export function machine(): Record<string, unknown> {
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency,
  };
}

/**
 * CPU used by a local PostgreSQL's backends that have exited: the postmaster's cutime +
 * cstime (Linux /proc), in ms. The delta around a run whose connections are all closed is
 * the server work that run caused. Undefined where /proc is not readable.
 */
export function serverChildCpuMs(dataDirectory: string): number | undefined {
  try {
    const pid = readFileSync(join(dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0];
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); cutime and cstime are fields 16 and 17.
    const ticks = Number(fields[13]) + Number(fields[14]);
    return (ticks * 1000) / clockTicks();
  } catch {
    return undefined;
  }
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    ticksPerSecond = Number(out.stdout.trim()) || 100;
  }
  return ticksPerSecond;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The same server's URL, another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * A new database `name` on the server (dropped first if a run left it), loaded with `sql` by
 * psql and vacuumed (frozen, analyzed): its URL and how long the load took.
 */
export async function loadedDatabase(serverUrl: string, name: string, sql: string): Promise<{ url: string; ms: number }> {
  const psql = findPgTool('psql');
  if (!psql) throw new Error('psql not found');
  await runStatements(serverUrl, [`DROP DATABASE IF EXISTS ${name}`, `CREATE DATABASE ${name}`]);
  const url = withDatabase(serverUrl, name);
  const load = await timed(psql.path, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql]);
  expectSuccess('load', load);
  expectSuccess('vacuum', await timed(psql.path, ['-X', '-q', '-d', url, '-c', 'VACUUM (FREEZE, ANALYZE)']));
  return { url, ms: load.ms };
}

/** Runs statements one after the other on a connection of their own. */
export async function runStatements(url: string, statements: string[]): Promise<pg.QueryResult[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const results: pg.QueryResult[] = [];
    for (const s of statements) results.push(await client.query(s));
    return results;
  } finally {
    await client.end();
  }
}

/**
 * A seed fixture grown to `scale` (fixtures/<name>/legacy.sql, then its scale.sql with
 * `-v scale=N`), loaded by psql into the database at `url`, vacuumed and analyzed. Returns
 * the rows loaded (the planner's count after ANALYZE) and the time it took.
 */
export async function loadScaledFixture(url: string, fixture: string, scale: number): Promise<{ rows: number; ms: number }> {
  const psql = findPgTool('psql');
  if (!psql) throw new Error('psql not found');
  const started = performance.now();
  for (const file of ['legacy.sql', 'scale.sql']) {
    const load = await timed(
      psql.path,
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', `scale=${scale}`, '-f', join(repoRoot, 'fixtures', fixture, file)],
      { env: libpqEnvironment(url) },
    );
    expectSuccess(`loading ${fixture}/${file}`, load);
  }
  const [, counted] = await runStatements(url, [
    'VACUUM ANALYZE',
    "SELECT sum(reltuples)::bigint AS n FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace",
  ]);
  return { rows: Number((counted?.rows[0] as { n?: string } | undefined)?.n ?? 0), ms: performance.now() - started };
}
