/** Table sizes for unbatched-update-large-table: the planner's estimate, pg_class.reltuples. */
import type pg from 'pg';
import { parseQualifiedName, quoteIdent } from '../tenancy/sql-text.js';

/** Estimated rows of each named table that exists and has been analyzed (reltuples -1 = never: left out). */
export async function tableRows(client: pg.Client, tables: string[]): Promise<Map<string, number>> {
  const rows = new Map<string, number>();
  if (tables.length === 0) return rows;
  const quoted = tables.map(regclassText);
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

/**
 * A table named as lint's facts name it (locks.ts's qualifiedName: case kept, a part quoted
 * when it holds a dot) as text for to_regclass: each part quoted where PostgreSQL needs it,
 * so "organizationModule" is found and `"my.schema".t` is not `my."schema.t"`.
 */
export function regclassText(name: string): string {
  return parseQualifiedName(name, 'table')
    .map((part) => quoteIdent(part.text))
    .join('.');
}
