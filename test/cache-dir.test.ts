/**
 * The cache directory (src/cache-dir.ts): where it is, writes that a reader never sees half
 * of, and other builds' files removed once a day old. Only a cache: a write that cannot
 * happen says so and leaves nothing behind.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheDirectory, removeStale, writeCacheFile } from '../src/cache-dir.js';
import { runCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';

const saved = { dir: process.env['TENANTIFY_CACHE_DIR'], xdg: process.env['XDG_CACHE_HOME'] };
afterEach(() => {
  for (const [key, value] of [
    ['TENANTIFY_CACHE_DIR', saved.dir],
    ['XDG_CACHE_HOME', saved.xdg],
  ] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

describe('the cache directory', () => {
  it('is TENANTIFY_CACHE_DIR, else tenantify under XDG_CACHE_HOME, else under ~/.cache; none turns it off', () => {
    delete process.env['TENANTIFY_CACHE_DIR'];
    delete process.env['XDG_CACHE_HOME'];
    expect(cacheDirectory()).toBe(join(homedir(), '.cache', 'tenantify'));
    process.env['XDG_CACHE_HOME'] = '/var/cache/someone';
    expect(cacheDirectory()).toBe('/var/cache/someone/tenantify');
    process.env['TENANTIFY_CACHE_DIR'] = '/srv/tenantify-cache';
    expect(cacheDirectory()).toBe('/srv/tenantify-cache');
    process.env['TENANTIFY_CACHE_DIR'] = 'none';
    expect(cacheDirectory()).toBeUndefined();
  });

  it('writes a file whole, owner-only, in a directory it creates owner-only', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tenantify-cache-dir-')), 'cache');
    const file = join(dir, 'splits-0123456789abcdef.json');
    expect(writeCacheFile(file, '{"a":1}')).toBe(true);
    expect(writeCacheFile(file, Buffer.from('{"a":2}'))).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe('{"a":2}');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir)).toEqual(['splits-0123456789abcdef.json']);
  });

  it('says when it cannot write, and leaves no temporary file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tenantify-cache-dir-'));
    writeFileSync(join(dir, 'a-file'), '');
    expect(writeCacheFile(join(dir, 'a-file', 'splits-0123456789abcdef.json'), '{}')).toBe(false);
    // The temporary file goes when the rename fails: a directory stands where the file would be.
    const blocked = join(dir, 'splits-fedcba9876543210.json');
    mkdirSync(blocked);
    expect(writeCacheFile(blocked, '{}')).toBe(false);
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('removes the files of other builds once they are older than the limit, and nothing else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tenantify-cache-dir-'));
    const day = 24 * 60 * 60 * 1000;
    const old = new Date(Date.now() - 2 * day);
    const names = ['splits-aaaa.json', 'splits-bbbb.json', 'splits-cccc.json', 'splits-dddd.json.123.tmp', 'code-eeee.bin', 'notes.txt'];
    for (const name of names) writeFileSync(join(dir, name), '');
    for (const name of ['splits-aaaa.json', 'splits-bbbb.json', 'splits-dddd.json.123.tmp', 'code-eeee.bin', 'notes.txt'])
      utimesSync(join(dir, name), old, old);
    removeStale(dir, join(dir, 'splits-aaaa.json'), /^splits-[0-9a-f]+\.json(\.\d+\.tmp)?$/, day);
    // aaaa is the current build's; cccc is recent; code-, notes.txt do not match.
    expect(readdirSync(dir).sort()).toEqual(['code-eeee.bin', 'notes.txt', 'splits-aaaa.json', 'splits-cccc.json']);
    expect(() => removeStale(join(dir, 'missing'), '', /./, day)).not.toThrow();
  });

  it('that cannot be written changes nothing but the time: a plan loads as with the cache off', async () => {
    const dir = writePlan({
      'migrations/0001_sql.sql': 'CREATE TABLE a (id int);\n-- tenantify:verify empty\nSELECT id FROM a;\n',
    });
    const notADirectory = join(mkdtempSync(join(tmpdir(), 'tenantify-cache-dir-')), 'a-file');
    writeFileSync(notADirectory, 'not a directory');
    const off = await runCli(['plan', '--dir', dir], { env: { TENANTIFY_CACHE_DIR: 'none' } });
    const blocked = await runCli(['plan', '--dir', dir], { env: { TENANTIFY_CACHE_DIR: notADirectory } });
    expect([off.code, off.stderr]).toEqual([0, '']);
    expect([blocked.code, blocked.stderr, blocked.stdout]).toEqual([0, '', off.stdout]);
    expect(readFileSync(notADirectory, 'utf8')).toBe('not a directory');
  });
});
