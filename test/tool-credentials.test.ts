import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toolEnvironment } from '../src/db/libpq.js';
import { findPgTool } from '../src/db/pg-tools.js';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

describe('the connection handed to pg_dump, pg_restore and psql', () => {
  it('takes each part from the URL, else from the libpq variables; PGPASSFILE stays, a service does not override the URL', () => {
    const env = {
      PATH: '/bin',
      PGPASSWORD: 'from-env',
      PGHOST: 'elsewhere',
      PGPORT: '7777',
      PGSSLMODE: 'require',
      PGPASSFILE: '/home/dba/.pgpass',
      PGSERVICEFILE: '/etc/pg_service.conf',
      PGSERVICE: 'prod',
      PGHOSTADDR: '10.0.0.9',
    };
    const tools = toolEnvironment('postgres://app@db.internal/legacy', env);
    expect(tools).toMatchObject({
      PGHOST: 'db.internal',
      PGPORT: '7777',
      PGUSER: 'app',
      PGDATABASE: 'legacy',
      PGPASSWORD: 'from-env',
      PGSSLMODE: 'require',
      PGPASSFILE: '/home/dba/.pgpass',
      PGSERVICEFILE: '/etc/pg_service.conf',
      PATH: '/bin',
    });
    expect(tools['PGSERVICE']).toBeUndefined();
    expect(tools['PGHOSTADDR']).toBeUndefined();
    // The URL's password wins over the environment's.
    expect(toolEnvironment('postgres://app:from-url@db.internal/legacy', env)['PGPASSWORD']).toBe('from-url');
    // Without a URL, the caller's libpq environment goes through whole (the service too).
    expect(toolEnvironment(undefined, env)).toEqual(env);
  });

  const dropLater = dropAfterAll();

  it('carries PGPASSWORD from the environment when the URL has none: the first snapshot of an apply gets it', async () => {
    const db = dropLater(await freshDatabase('pgpw'));
    const role = `tenantify_pw_${db.name.slice(-10)}`;
    await query(
      db.url,
      `CREATE ROLE ${role} LOGIN PASSWORD 's3cret-pw'; CREATE TABLE hosts (id int PRIMARY KEY, name text); INSERT INTO hosts VALUES (1, 'a'), (2, 'b');
                         GRANT ALL ON SCHEMA public TO ${role}; ALTER TABLE hosts OWNER TO ${role}; GRANT CREATE ON DATABASE ${db.name} TO ${role}`,
    );
    const bindir = mkdtempSync(join(tmpdir(), 'tenantify-tools-'));
    try {
      // The suite's server trusts local connections, so pg_dump would not complain: wrappers record what each tool was handed.
      const real = findPgTool('pg_dump');
      if (!real) throw new Error('pg_dump is needed for this test');
      const trace = join(bindir, 'trace');
      for (const tool of ['pg_dump', 'pg_restore', 'psql']) {
        writeFileSync(
          join(bindir, tool),
          `#!/bin/sh\n[ "$1" = --version ] || echo "${tool} user=$PGUSER password=$PGPASSWORD" >> ${trace}\nexec ${join(dirname(real.path), tool)} "$@"\n`,
        );
        chmodSync(join(bindir, tool), 0o755);
      }
      const dir = writePlan({
        'migrations/0001_rename_hosts.sql': 'UPDATE hosts SET name = upper(name);\n',
        'rollbacks/0001_rename_hosts.sql': 'UPDATE hosts SET name = lower(name);\n',
      });
      const url = new URL(db.url);
      url.username = role;
      url.password = '';
      const result = await runCli(['apply', '--dir', dir, '-d', url.toString()], {
        env: { PGPASSWORD: 's3cret-pw', TENANTIFY_PG_BINDIR: bindir },
      });
      expect(result.code, result.stderr).toBe(0);
      expect(readFileSync(trace, 'utf8')).toContain(`pg_dump user=${role} password=s3cret-pw`);
      expect(result.stdout + result.stderr).not.toContain('s3cret-pw');
      const [row] = await query<{ n: number }>(
        db.url,
        "SELECT count(*)::int AS n FROM tenantify.units WHERE status = 'applied' AND snapshot IS NOT NULL",
      );
      expect(row?.n).toBe(1);
    } finally {
      rmSync(bindir, { recursive: true, force: true });
      await query(db.url, `DROP OWNED BY ${role}; DROP ROLE ${role}`).catch(() => {});
    }
  });
});
