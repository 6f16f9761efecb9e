/** Options every command takes (the contract's shared options). */
export interface CommonOptions {
  databaseUrl?: string;
  dir: string;
  json?: boolean;
  color: boolean;
}

/**
 * -d, else DATABASE_URL, else the libpq PG* variables (node-pg and pg_dump read those
 * themselves). Undefined when none of them says anything.
 */
export function resolveDatabaseUrl(options: CommonOptions, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (options.databaseUrl) return options.databaseUrl;
  if (env['DATABASE_URL']) return env['DATABASE_URL'];
  return undefined;
}

export function hasLibpqEnvironment(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGSERVICE'].some((name) => Boolean(env[name]));
}
