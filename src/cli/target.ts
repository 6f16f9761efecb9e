import { UsageError } from '../errors.js';
import { hasLibpqEnvironment, resolveDatabaseUrl, type CommonOptions } from './common.js';

/** The database a command works on; a usage error (exit 2) when nothing names one. */
export function requireDatabase(options: CommonOptions): string | undefined {
  const url = resolveDatabaseUrl(options);
  if (url || hasLibpqEnvironment()) return url;
  throw new UsageError('no database given', {
    code: 'database-missing',
    hint: 'pass -d/--database-url postgres://user@host/db, or set DATABASE_URL, or the PG* variables (PGHOST, PGDATABASE...)',
  });
}
