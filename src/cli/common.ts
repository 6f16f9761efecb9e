import { parseDatabaseUrl } from '../db/libpq.js';

/** Options every command takes (the contract's shared options). */
export interface CommonOptions {
  databaseUrl?: string;
  dir: string;
  json?: boolean;
  color: boolean;
}

/**
 * -d, else DATABASE_URL, else the libpq PG* variables (node-pg and pg_dump read those
 * themselves). Undefined when none of them says anything. A URL that does not parse is a
 * usage error naming the part that is wrong, before anything else happens.
 */
export function resolveDatabaseUrl(options: CommonOptions, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const url = options.databaseUrl || env['DATABASE_URL'] || undefined;
  if (url) parseDatabaseUrl(url);
  return url;
}

export function hasLibpqEnvironment(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGSERVICE'].some((name) => Boolean(env[name]));
}
