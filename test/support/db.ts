/** Fresh databases per test on the suite's throwaway server, and what tests ask of them. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { inject } from 'vitest';

export function serverUrl(): string {
  return inject('serverUrl');
}

export function databaseUrl(name: string): string {
  const url = new URL(serverUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

export async function query<T extends pg.QueryResultRow = Record<string, unknown>>(url: string, text: string, params?: unknown[]): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

/** A new empty database (or a copy of `template`), dropped by the returned cleanup. */
export async function freshDatabase(prefix = 't', template = 'template0'): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  await query(serverUrl(), `CREATE DATABASE ${name} TEMPLATE ${template}`);
  return {
    name,
    url: databaseUrl(name),
    drop: async () => {
      await query(serverUrl(), `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** A template database holding `sqlFile` loaded once per test file; copies of it are fast. */
export async function fixtureTemplate(sqlFile: string, prefix = 'tpl'): Promise<{ name: string; drop: () => Promise<void> }> {
  const db = await freshDatabase(prefix);
  await query(db.url, readFileSync(sqlFile, 'utf8'));
  return { name: db.name, drop: db.drop };
}

/** Every user table outside the ledger, with a fingerprint of its content (timestamps left out: now() differs per run). */
export async function contentFingerprint(url: string, ledgerSchema = 'tenantify'): Promise<Record<string, string>> {
  const tables = await query<{ name: string; cols: string | null }>(
    url,
    `SELECT format('%I.%I', c.table_schema, c.table_name) AS name,
            string_agg(format('%I', c.column_name), ', ' ORDER BY c.ordinal_position)
              FILTER (WHERE c.data_type NOT LIKE 'timestamp%') AS cols
       FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
      WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN ('pg_catalog', 'information_schema', $1)
      GROUP BY 1 ORDER BY 1`,
    [ledgerSchema],
  );
  const result: Record<string, string> = {};
  for (const { name, cols } of tables) {
    const [row] = await query<{ n: number; md5: string | null }>(url, `SELECT count(*)::int AS n, md5(string_agg(r::text, E'\\n' ORDER BY r::text)) AS md5 FROM (SELECT ${cols ?? '1'} FROM ${name}) r`);
    result[name] = `${row?.n ?? 0}:${row?.md5 ?? ''}`;
  }
  return result;
}
