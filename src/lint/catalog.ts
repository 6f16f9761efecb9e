/** Table sizes for unbatched-update-large-table: the planner's estimate, pg_class.reltuples. */
import type pg from 'pg';
import { quoteIdent } from '../tenancy/sql-text.js';

/** Estimated rows of each named table that exists and has been analyzed (reltuples -1 = never: left out). */
export async function tableRows(client: pg.Client, tables: string[]): Promise<Map<string, number>> {
  const rows = new Map<string, number>();
  if (tables.length === 0) return rows;
  // Names as the parser gave them (case kept): quoted, so "organizationModule" is found.
  const quoted = tables.map((t) => t.split('.').map(quoteIdent).join('.'));
  const result = await client.query<{ name: string; rows: number }>(
    `SELECT t.name, c.reltuples::float8 AS rows
       FROM unnest($1::text[], $2::text[]) AS t(name, quoted)
       JOIN pg_class c ON c.oid = to_regclass(t.quoted)
      WHERE c.reltuples >= 0`,
    [tables, quoted],
  );
  for (const row of result.rows) rows.set(row.name, Number(row.rows));
  return rows;
}
