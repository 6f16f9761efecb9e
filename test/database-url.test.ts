import { describe, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../src/db/libpq.js';
import { redact } from '../src/db/redact.js';
import { runCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';

describe('a database URL', () => {
  it('parses into its parts, decoded', () => {
    expect(parseDatabaseUrl('postgresql://app%40corp:p%40ss@db.example.com:6543/legacy%20db?sslmode=require&ssl=true')).toEqual({
      host: 'db.example.com',
      port: '6543',
      user: 'app@corp',
      password: 'p@ss',
      database: 'legacy db',
      variables: { PGSSLMODE: 'require' },
    });
    expect(parseDatabaseUrl('postgres:///legacy?host=/var/run/postgresql')).toEqual({
      database: 'legacy',
      variables: { PGHOST: '/var/run/postgresql' },
    });
    expect(parseDatabaseUrl('postgres://u@[::1]/db').host).toBe('::1');
  });

  it('that does not parse names the wrong part, never the password', () => {
    const cases: [string, RegExp][] = [
      ['postgres://u:secret@127.0.0.1:notaport/db', /the port "notaport" is not a number/],
      ['postgres://u:secret@127.0.0.1:99999/db', /the port "99999"/],
      ['mysql://u:secret@127.0.0.1/db', /the scheme is "mysql:"/],
      ['u:secret@127.0.0.1/db', /does not start with postgres:\/\//],
      ['postgres://u:sec%zzret@127.0.0.1/db', /the password is not valid percent-encoding/],
      ['postgres://u:secret@exa mple.com/db', /the host "exa mple.com"/],
    ];
    for (const [url, message] of cases) {
      let error: Error | undefined;
      try {
        parseDatabaseUrl(url);
      } catch (e) {
        error = e as Error;
      }
      expect(error?.message, url).toMatch(message);
      expect(error?.message, url).not.toMatch(/secret|sec%zzret/);
      expect((error as { exitCode?: number }).exitCode).toBe(2);
    }
  });

  it('with an unencoded @ in its password is redacted to the last @ of the host part', () => {
    expect(redact('cannot reach postgres://u:p@ss@127.0.0.1:5432/db today')).toBe('cannot reach postgres://u:***@127.0.0.1:5432/db today');
  });

  it('given to a command is a usage error (exit 2) that names the part, not a bug', async () => {
    const dir = writePlan({ 'migrations/0001_a.sql': 'CREATE TABLE a (id int);\n' });
    for (const command of ['status', 'plan', 'apply']) {
      const result = await runCli([command, '--dir', dir, '-d', 'postgres://u:secret@127.0.0.1:notaport/db']);
      expect(result.code, command).toBe(2);
      expect(result.stderr, command).toContain(
        'the database URL postgres://u:***@127.0.0.1:notaport/db is not valid: the port "notaport" is not a number from 1 to 65535',
      );
      expect(result.stderr, command).not.toMatch(/secret|bug|TypeError|\n\s+at /);
    }
    const fromEnv = await runCli(['status', '--dir', dir, '--json'], {
      env: { DATABASE_URL: 'postgres://u:secret@127.0.0.1:notaport/db' },
    });
    expect(fromEnv.code).toBe(2);
    expect(JSON.parse(fromEnv.stdout).error.message).toMatch(/the port "notaport"/);
    expect(fromEnv.stdout + fromEnv.stderr).not.toContain('secret');
  });
});
