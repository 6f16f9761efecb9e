/** SQL text shared by the data rules: how a table's rows are named in a sample. */
import type { ScopedTable } from '../check-scope.js';
import { quoteIdent } from '../sql-text.js';

/** The columns a sample shows of `alias`'s rows: the primary key (ctid for a table without one). */
export function rowIdentity(table: ScopedTable, alias: string): { select: string; order: string } {
  const pk = table.catalog.primaryKey;
  if (!pk?.length) return { select: `${alias}.ctid::text AS ctid`, order: `${alias}.ctid` };
  return { select: pk.map((c) => `${alias}.${quoteIdent(c)}`).join(', '), order: pk.map((c) => `${alias}.${quoteIdent(c)}`).join(', ') };
}

/** How many rows a sample shows. */
export const sampleSize = 5;
