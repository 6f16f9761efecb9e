/**
 * `--fixture FILE`: a SQL file loaded into a new database of a throwaway PostgreSQL, for the
 * commands that read a schema without a live database (`tenancy analyze`, `check`,
 * `scaffold`). The server and the database are gone when the callback ends, whatever happens.
 */
import { randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import { withSession } from './connection.js';
import { findPgTool, libpqEnvironment, runTool } from './pg-tools.js';
import { redact } from './redact.js';
import { createScratchDatabase } from './scratch-database.js';
import { startThrowawayPostgres } from './throwaway.js';

export interface FixtureOptions {
  /** A server to load the fixture on instead of a throwaway one (it gets a new database, dropped after). */
  serverUrl?: string | undefined;
  /** Progress lines. */
  log?: ((line: string) => void) | undefined;
  /** What the connections say they are for (application_name). */
  purpose: string;
}

export async function withFixtureDatabase<T>(fixture: string, options: FixtureOptions, fn: (url: string) => Promise<T>): Promise<T> {
  await access(fixture).catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(`--fixture ${fixture}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`, {
      code: 'fixture-not-found',
    });
  });
  const server = await startThrowawayPostgres({ url: options.serverUrl, log: options.log ?? (() => {}) });
  const name = `fixture_${randomBytes(5).toString('hex')}`;
  try {
    await withSession(server.url, options.purpose, (s) => createScratchDatabase(s.client, name));
    const url = new URL(server.url);
    url.pathname = `/${name}`;
    await loadSqlFile(url.toString(), fixture);
    // The planner's estimates (and the rows a catalog reports) need statistics.
    await withSession(url.toString(), options.purpose, (s) => s.client.query('ANALYZE'));
    return await fn(url.toString());
  } finally {
    if (server.kind === 'explicit') {
      await withSession(server.url, options.purpose, (s) => s.client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(() => {});
    }
    await server.close();
  }
}

/** A SQL file run by psql in one transaction, stopping at the first error (exit 2 naming the file). */
export async function loadSqlFile(url: string, file: string): Promise<void> {
  const psql = findPgTool('psql');
  if (!psql)
    throw new UsageError('psql was not found', {
      code: 'tool-missing',
      hint: 'install the PostgreSQL client (e.g. `apt-get install -y postgresql-client`)',
    });
  try {
    await runTool({
      path: psql.path,
      args: ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', '-f', file],
      env: libpqEnvironment(url),
    });
  } catch (error) {
    throw new UsageError(`${file} does not load`, {
      code: 'fixture-invalid',
      hint: 'fix the SQL file; nothing else was touched',
      details: [redact((error as Error).message)],
    });
  }
}
