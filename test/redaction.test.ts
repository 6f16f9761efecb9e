/**
 * No password in any output, for any URL: the authority part fuzzed with the characters that
 * end or confuse it (@ : / # ? % [ ] space quote backslash), given as -d and as DATABASE_URL,
 * read as text and as --json, parseable or not.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeUrl, parseDatabaseUrl } from '../src/db/libpq.js';
import { redact, rememberUrlSecrets } from '../src/db/redact.js';
import { runCli } from './support/cli.js';
import { serverUrl } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

/** A small seeded generator (mulberry32): a failure names its seed and runs again the same. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const special = ['@', ':', '/', '#', '?', '%', '[', ']', ' ', '"', '\\', '&', '=', '%4', '%zz', '%40', '@@'];
const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** A password of 10 to 20 characters, letters mixed with 1 to 4 of the troublemakers (never one the output could hold by chance). */
function password(next: () => number): string {
  const pick = <T>(items: ArrayLike<T>): T => items[Math.floor(next() * items.length)] as T;
  const chars = Array.from({ length: 10 + Math.floor(next() * 10) }, () => pick(letters));
  for (let i = 1 + Math.floor(next() * 4); i > 0; i--) chars.splice(Math.floor(next() * chars.length), 0, pick(special));
  return `Pw${chars.join('')}`;
}

/** The forms of a password that must never show: as written, and percent-decoded. */
function forms(pw: string): string[] {
  const decoded = (() => {
    try {
      return decodeURIComponent(pw);
    } catch {
      return pw;
    }
  })();
  return [...new Set([pw, decoded, encodeURIComponent(pw)])];
}

function urlsWith(pw: string, host: string): string[] {
  return [
    `postgres://spec:${pw}@${host}/db`,
    `postgresql://spec:${encodeURIComponent(pw)}@${host}/db?sslmode=disable`,
    `postgres://spec:${pw}@${host}/db?application_name=x`,
    `postgres://:${pw}@${host}/db`,
    `postgres://spec:${pw}@/db?host=${host}`,
  ];
}

describe('a password in a database URL', () => {
  it('never shows in a parse error, a description or redacted text (fuzzed, 400 URLs)', () => {
    const next = random(24);
    for (let i = 0; i < 80; i++) {
      const pw = password(next);
      for (const url of urlsWith(pw, '127.0.0.1:5432')) {
        rememberUrlSecrets(url);
        let message = '';
        try {
          parseDatabaseUrl(url);
        } catch (error) {
          message = (error as Error).message;
          expect((error as { code?: string }).code, url).toBe('url-invalid');
        }
        const shown = [
          message,
          describeUrl(url),
          redact(url),
          redact(`could not connect with ${url} today`),
          redact(JSON.stringify({ url })),
        ].join('\n');
        for (const form of forms(pw)) expect(shown, `password ${JSON.stringify(pw)} in ${JSON.stringify(shown)}`).not.toContain(form);
      }
    }
  });

  it('is masked by shape even when never given: whatever sits between :// and the last @', () => {
    expect(redact('see postgres://spec:Se#cretTok@host:5432/db')).toBe('see postgres://spec:***@host:5432/db');
    expect(redact('postgres://u:p@ss:w/rd@127.0.0.1/x')).toBe('postgres://u:***@127.0.0.1/x');
    expect(redact('postgres://we/ird@host/db')).toBe('postgres://***@host/db');
    expect(redact('postgres://alice@host/db')).toBe('postgres://alice@host/db');
  });

  it('a socket URL is described by its query parameters, decoded', () => {
    expect(describeUrl('postgres:///legacy?host=%2Fvar%2Frun%2Fpostgresql&user=postgres')).toBe('postgres@/var/run/postgresql/legacy');
    expect(describeUrl('postgres://app%40corp:pw@db.example.com:6543/legacy%20db')).toBe('app@corp@db.example.com:6543/legacy db');
  });

  it('never shows in what a command prints: -d and DATABASE_URL, text and --json, server up or down (fuzzed)', async () => {
    const server = new URL(serverUrl());
    const up = `${server.hostname}:${server.port}`;
    const dir = writePlan({ 'migrations/0001_a.sql': 'CREATE TABLE a (id int);\n' });
    const next = random(2024);
    const runs: Promise<void>[] = [];
    // Each password once, the ways of giving and reading it in turn (the breadth is in the test above).
    for (let i = 0; i < 10; i++) {
      const pw = password(next);
      const url = urlsWith(pw, i % 3 === 0 ? up : '127.0.0.1:1')[i % 5] as string;
      const json = i % 2 === 1;
      const args = ['status', '--dir', dir, ...(json ? ['--json'] : [])];
      const run = Math.floor(i / 2) % 2 === 0 ? runCli([...args, '-d', url]) : runCli(args, { env: { DATABASE_URL: url } });
      runs.push(
        run.then((result) => {
          expect(result.stderr, url).not.toMatch(/this is a bug/);
          if (json) expect(() => JSON.parse(result.stdout), result.stdout).not.toThrow();
          for (const form of forms(pw))
            expect(result.stdout + result.stderr, `password ${JSON.stringify(pw)} of ${url}`).not.toContain(form);
        }),
      );
      // Two at a time: this machine is shared.
      if (runs.length === 2) await Promise.all(runs.splice(0));
    }
    await Promise.all(runs);
  });

  it('thrown by a TypeScript unit while it loads (the value of PGPASSWORD) is masked in text and --json', async () => {
    const dir = writePlan({});
    mkdirSync(join(dir, 'migrations'), { recursive: true });
    writeFileSync(
      join(dir, 'migrations/0001_leak.ts'),
      "throw new Error(`cannot log in with ${process.env['PGPASSWORD']} as ${process.env['PGPASSWORD']}`);\n",
    );
    for (const json of [false, true]) {
      const result = await runCli(['plan', '--dir', dir, '-d', serverUrl(), ...(json ? ['--json'] : [])], {
        env: { PGPASSWORD: 'Hunter2-"sec\\ret' },
      });
      expect(result.code).toBe(2);
      if (json) expect(JSON.parse(result.stdout).error.code).toBe('ts-unit-invalid');
      expect(result.stdout + result.stderr).toContain('cannot log in with *** as ***');
      expect(result.stdout + result.stderr).not.toMatch(/Hunter2/);
    }
  });
});
