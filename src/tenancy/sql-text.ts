/**
 * Identifiers in generated SQL, quoted only where PostgreSQL needs it, so a DBA reads
 * `public.tasks` and `"teamMember"` as they would write them.
 */
import type { TableName } from './types.js';

/** Words that must be quoted as identifiers (PostgreSQL's reserved keywords, and the type-or-function ones that bite). */
const reserved = new Set(
  `all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate collation column
  concurrently constraint create cross current_catalog current_date current_role current_schema current_time current_timestamp
  current_user default deferrable desc distinct do else end except false fetch for foreign freeze from full grant group having
  ilike in initially inner intersect into is isnull join lateral leading left like limit localtime localtimestamp natural not
  notnull null offset on only or order outer overlaps placing primary references returning right select session_user similar
  some symmetric system_user table tablesample then to trailing true union unique user using variadic verbose when where window with`
    .split(/\s+/)
    .filter(Boolean),
);

/** An identifier as SQL text: bare when it is lower-case, plain and not reserved; else double-quoted. */
export function quoteIdent(name: string): string {
  if (/^[a-z_][a-z0-9_$]*$/.test(name) && !reserved.has(name)) return name;
  return `"${name.replace(/"/g, '""')}"`;
}

/** `schema.table` (as stored) to SQL text; the `public.` prefix is kept so a unit never depends on search_path. */
export function quoteQualified(name: TableName): string {
  const dot = name.indexOf('.');
  return dot === -1 ? quoteIdent(name) : `${quoteIdent(name.slice(0, dot))}.${quoteIdent(name.slice(dot + 1))}`;
}

/** A string as a SQL literal. */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
