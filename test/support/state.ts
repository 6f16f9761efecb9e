import pg from 'pg';
import { describeDatabase, type DatabaseState } from '../../src/db/compare.js';

/** A database's schema and content as compare.ts sees them, tenantify's ledger schema left out. */
export async function databaseState(url: string, ignoredSchemas = ['tenantify']): Promise<DatabaseState> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await describeDatabase(client, ignoredSchemas);
  } finally {
    await client.end();
  }
}
