/** Runs the built CLI as a user would, and collects what it says. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const bin = fileURLToPath(new URL('../../bin/tenantify', import.meta.url));

/**
 * The environment a CLI run inherits, without NODE_EXTRA_CA_CERTS: where it is set (this
 * machine sets it for every process) node reads and parses the whole CA bundle before it runs
 * anything, 40-70 ms of CPU at each of the suite's hundreds of CLI starts, and no run here
 * needs a certificate authority (the throwaway server speaks no TLS).
 */
const { NODE_EXTRA_CA_CERTS: _caBundle, ...inherited } = process.env;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function startCli(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: options.cwd,
    env: { ...inherited, NO_COLOR: '1', DATABASE_URL: '', PGHOST: '', PGDATABASE: '', PGUSER: '', PGPORT: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

export function runCli(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return startCli(args, options).done;
}
