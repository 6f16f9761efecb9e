/**
 * tenantify used from a plan repository of its own: the package as `npm pack` makes it,
 * installed into an empty directory, runs there. The install takes its dependencies from
 * npm's cache when it holds them all (--prefer-offline) and from the registry otherwise:
 * the first run on a machine with an empty cache needs the network. Its install scripts run
 * as npm would run them, but two optional native builds (see below).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'tenantify-pack-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the packed package', () => {
  it('installs into an empty directory with npm, and `npx tenantify` runs --help, init and plan there', { timeout: 600_000 }, () => {
    if (!existsSync(join(root, 'dist', 'tenantify.cjs'))) throw new Error('build first: npm run build');
    // The build is already there (npm test builds first): packing need not run it again.
    execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], { cwd: root, stdio: 'pipe' });
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBeDefined();

    const project = join(work, 'plans');
    execFileSync('mkdir', ['-p', project]);
    writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'our-plans', version: '1.0.0', private: true })}\n`);
    const npm = (...args: string[]) => spawnSync('npm', args, { cwd: project, encoding: 'utf8' });
    const install = npm(
      'install',
      '--save-dev',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
      join(work, tarball as string),
    );
    expect(install.status, install.stderr).toBe(0);
    // Then every install script npm would have run, but the native builds of the two optional
    // bindings of testcontainers' SSH transport, which tenantify never loads and whose failed
    // build npm tolerates anyway (ssh2's install exits 0 whatever node-gyp did; cpu-features
    // is an optional dependency): they were 60% of the install's CPU (12 of 20 s here).
    const scripted = npm('query', ':is(:attr(scripts, [preinstall]), :attr(scripts, [install]), :attr(scripts, [postinstall]))');
    expect(scripted.status, scripted.stderr).toBe(0);
    const optionalNative = new Set(['ssh2', 'cpu-features']);
    const names = [...new Set((JSON.parse(scripted.stdout) as { name: string }[]).map((p) => p.name))].filter(
      (n) => !optionalNative.has(n),
    );
    expect(names).toContain('esbuild'); // tsx's, for TypeScript units: its postinstall checks its binary
    const scripts = npm('rebuild', '--no-audit', '--no-fund', ...names);
    expect(scripts.status, scripts.stderr).toBe(0);

    const npx = (...args: string[]) =>
      spawnSync('npx', ['--no-install', 'tenantify', ...args], {
        cwd: project,
        encoding: 'utf8',
        env: { ...process.env, NO_COLOR: '1', DATABASE_URL: '', PGHOST: '', PGDATABASE: '', PGUSER: '', PGSERVICE: '' },
      });
    const help = npx('--help');
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: tenantify/);
    expect(npx('init', '--dir', 'db').status).toBe(0);
    const plan = npx('plan', '--dir', 'db');
    expect(plan.status, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('0001_create_organizations');
    expect(plan.stdout).toContain('1 units; 1 to run');
    // The programmatic API too, for TypeScript units' defineUnit.
    const api = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', "const m = await import('tenantify'); console.log(typeof m.defineUnit)"],
      { cwd: project, encoding: 'utf8' },
    );
    expect(api.stdout.trim(), api.stderr).toBe('function');
  });
});
