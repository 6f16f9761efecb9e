/**
 * pg_dump, pg_restore and psql as child processes. Credentials travel in the child's
 * environment (PGPASSWORD...), never in an argument list that `ps` would show.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
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
export function findPgTool(tool: PgTool, env: NodeJS.ProcessEnv = process.env): { path: string; major: number; version: string } | undefined {
  const bindir = env['TENANTIFY_PG_BINDIR'];
  const candidates = bindir ? [join(bindir, tool)] : (env['PATH'] ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, tool));
  const root = '/usr/lib/postgresql';
  if (!bindir && existsSync(root)) {
    for (const v of readdirSync(root).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a))) candidates.push(join(root, v, 'bin', tool));
  }
  const key = `${tool}\0${bindir ?? ''}\0${env['PATH'] ?? ''}`;
  if (found.has(key)) return found.get(key);
  let result: { path: string; major: number; version: string } | undefined;
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    // Debian's pg_wrapper (a Perl script) costs ~100 ms a call; the versioned binaries below are the real thing.
    if (!bindir && realpathSync(path).endsWith('pg_wrapper') && candidates.some((c) => c.startsWith('/usr/lib/postgresql/') && existsSync(c))) continue;
    const out = spawnSync(path, ['--version'], { encoding: 'utf8' });
    const match = /(\d+)(?:\.(\d+))?/.exec(out.stdout ?? '');
    if (out.status === 0 && match) {
      result = { path, major: Number(match[1]), version: match[0] };
      break;
    }
  }
  found.set(key, result);
  return result;
}

const found = new Map<string, { path: string; major: number; version: string } | undefined>();

export interface ToolResult {
  stdout: string;
  stderr: string;
}

export function runPgTool(path: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { env, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(redact(`${path.split('/').pop()} failed (exit ${code}): ${stderr.trim().slice(-2000)}`)));
    });
    if (input !== undefined && child.stdin) {
      child.stdin.on('error', () => {});
      child.stdin.end(input);
    }
  });
}
