/**
 * squawk (npm `squawk-cli`), run once over every SQL file of the plan. Its binary comes
 * from a platform package (`@squawk-cli/<os>-<arch>`); where there is none, lint says so
 * and runs tenantify's own rules alone.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface SquawkFinding {
  /** As given to squawk: relative to the plan directory. */
  file: string;
  /** 1-based. */
  line: number;
  rule: string;
  message: string;
  help: string | undefined;
}

export type SquawkRun = { available: true; version: string; findings: SquawkFinding[] } | { available: false; reason: string };

/** `TENANTIFY_SQUAWK` names the binary to use (a path that does not exist: run without squawk). */
export function locateSquawk(env: NodeJS.ProcessEnv = process.env): { path: string } | { reason: string } {
  const override = env['TENANTIFY_SQUAWK'];
  if (override) return existsSync(override) ? { path: override } : { reason: `TENANTIFY_SQUAWK=${override} does not exist` };
  const requireFrom = createRequire(import.meta.url);
  const resolverModule = 'squawk-cli/js/index.js';
  try {
    // squawk-cli's own resolver knows which platform package holds the binary.
    const resolver = requireFrom(resolverModule) as { getBinaryPath(): string };
    return { path: resolver.getBinaryPath() };
  } catch (error) {
    const message = (error as Error).message.split('\n')[0] ?? String(error);
    return {
      reason: /Cannot find module 'squawk-cli/.test(message) ? 'the squawk-cli package is not installed' : message.replace(/^squawk: /, ''),
    };
  }
}

function run(path: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(path, args, { cwd, maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (code === -1 ? (error as Error).message : '') });
    });
  });
}

interface RawFinding {
  file: string;
  line: number;
  rule_name: string;
  message: string;
  help: string | null;
}

/**
 * One run over `files` (relative to `cwd`, the plan directory, so a `.squawk.toml` there
 * applies). `--assume-in-transaction`: tenantify runs a unit in a transaction (or, with
 * `transaction off`, resumes it statement by statement), so a table created earlier in the
 * same file is new and empty, and squawk leaves its indexes and constraints alone.
 */
export async function runSquawk(cwd: string, files: string[], env: NodeJS.ProcessEnv = process.env): Promise<SquawkRun> {
  const located = locateSquawk(env);
  if ('reason' in located) return { available: false, reason: located.reason };
  // Both at once: the version is for the report, the run is the work.
  const [version, result] = await Promise.all([
    run(located.path, ['--version'], cwd),
    files.length === 0
      ? Promise.resolve({ code: 0, stdout: '[]', stderr: '' })
      : run(located.path, ['--reporter', 'json', '--assume-in-transaction', ...files], cwd),
  ]);
  if (version.code !== 0)
    return { available: false, reason: `${located.path} does not run: ${version.stderr.trim().split('\n')[0] ?? `exit ${version.code}`}` };
  // 0: nothing found; 1: findings. Anything else is squawk failing.
  let raw: RawFinding[];
  try {
    if (result.code !== 0 && result.code !== 1) throw new Error(result.stderr.trim().split('\n')[0] || `exit ${result.code}`);
    raw = result.stdout.trim() === '' ? [] : (JSON.parse(result.stdout) as RawFinding[]);
    if (!Array.isArray(raw)) throw new Error('its JSON report is not a list');
  } catch (error) {
    return { available: false, reason: `squawk failed: ${(error as Error).message}` };
  }
  return {
    available: true,
    version: version.stdout.trim().replace(/^squawk\s+/, ''),
    // squawk counts lines from 0.
    findings: raw.map((f) => ({ file: f.file, line: f.line + 1, rule: f.rule_name, message: f.message, help: f.help ?? undefined })),
  };
}
