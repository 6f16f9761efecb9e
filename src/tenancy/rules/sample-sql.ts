/** SQL text shared by the data rules: how a table's rows are named in a sample, and the one query each runs. */
import type { ScopedTable } from '../check-scope.js';
import { quoteIdent } from '../sql-text.js';
import { violationsColumn } from './types.js';

/** The columns a sample shows of `alias`'s rows (the primary key; ctid without one), and their names to sort by. */
export function rowIdentity(table: ScopedTable, alias: string): { columns: string[]; order: string[] } {
  const pk = table.catalog.primaryKey;
  if (!pk?.length) return { columns: [`${alias}.ctid`], order: ['ctid'] };
  return { columns: pk.map((c) => `${alias}.${quoteIdent(c)}`), order: pk.map(quoteIdent) };
}

/** How many rows a sample shows. */
export const sampleSize = 5;

/**
 * A data rule's query: the rows in violation are found once (a MATERIALIZED CTE, planned
 * as a plain scan or join whatever the LIMIT outside it), then counted and the first ones
 * shown. No violation, no row.
 */
export function violationQuery(comment: string, columns: string[], from: string, order: string[]): string {
  const shown = [...new Set(columns)].join(', ');
  return [
    `-- ${comment}`,
    'WITH violations AS MATERIALIZED (',
    `SELECT ${shown}`,
    from,
    ')',
    `SELECT (SELECT count(*) FROM violations) AS ${quoteIdent(violationsColumn)}, *`,
    '  FROM violations',
    ` ORDER BY ${order.join(', ')}`,
    ` LIMIT ${sampleSize}`,
  ].join('\n');
}
