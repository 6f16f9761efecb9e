import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';

describe('the CLI', () => {
  it('lists the eight commands, and the prebuilt --help is exactly what commander prints', async () => {
    const fast = await runCli(['--help']);
    const full = await runCli(['--help', '--no-color']);
    expect(fast.code).toBe(0);
    for (const command of ['init', 'plan', 'apply', 'verify', 'rollback', 'status', 'snapshots', 'rehearse']) {
      expect(fast.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    }
    // `--help --no-color` goes through commander itself.
    expect(full.code).toBe(0);
    expect(fast.stdout).toBe(full.stdout);
  });

  it('prints the package version, the same from the launcher and from commander', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const fast = await runCli(['--version']);
    const full = await runCli(['--version', '--no-color']);
    expect([fast.code, fast.stdout]).toEqual([0, `${version}\n`]);
    expect([full.code, full.stdout]).toEqual([0, `${version}\n`]);
  });

  it('gives every command the shared options', async () => {
    for (const command of ['init', 'plan', 'apply', 'verify', 'rollback', 'status', 'snapshots', 'rehearse']) {
      const help = await runCli([command, '--help']);
      expect(help.code).toBe(0);
      for (const option of ['-d, --database-url <url>', '--dir <path>', '--json', '--no-color']) expect(help.stdout).toContain(option);
    }
  });

  it('exits 2 on an unknown command or option', async () => {
    expect((await runCli(['frobnicate'])).code).toBe(2);
    expect((await runCli(['apply', '--frobnicate'])).code).toBe(2);
  });
});
