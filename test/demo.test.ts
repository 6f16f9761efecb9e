import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { serverUrl } from './support/db.js';

const demo = fileURLToPath(new URL('../dist/cli/demo.js', import.meta.url));

function runDemo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [demo, ...args], {
      env: { ...process.env, NO_COLOR: '1', TENANTIFY_DEMO_SERVER_URL: serverUrl(), DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run demo', () => {
  it('tells the tenant upgrade of a live app to its end: every step, no failed write, isolation proven', async () => {
    const { code, stdout, stderr } = await runDemo([]);
    expect(stderr).not.toMatch(/demo failed/);
    expect(code).toBe(0);
    const steps = [
      '$ tenantify tenancy analyze',
      '$ tenantify tenancy scaffold --composite --rls',
      '$ tenantify apply',
      '$ tenantify tenancy check --as',
      '$ tenantify verify',
      '$ tenantify rollback --yes',
      '$ tenantify status',
    ];
    let at = 0;
    for (const step of steps) {
      const found = stdout.indexOf(step, at);
      expect(found, `${step} after the step before it`).toBeGreaterThan(-1);
      at = found;
    }
    const writes = /legacy app during the upgrade: (\d+) writes, (\d+) errors/.exec(stdout);
    expect(Number(writes?.[1])).toBeGreaterThan(0);
    expect(Number(writes?.[2])).toBe(0);
    expect(stdout).toMatch(/^Isolated/m);
    expect(stdout).toMatch(/refused by PostgreSQL: .*row-level security/);
  });
});
