import type { ScopedEdge, ScopedTable } from '../check-scope.js';
import { quoteIdent, quoteQualified } from '../sql-text.js';
import { rowIdentity, violationQuery } from './sample-sql.js';
import { always, keyed, keyType, type DataQuery, type DataRule } from './types.js';

/**
 * A row that references a row of another tenant, along any foreign key between tables of
 * the tenancy (self-references and the derivation's own hops included). A foreign key that
 * pairs the key with the referenced key cannot reach another tenant: it is not queried.
 * The join follows the referenced side's unique index.
 */
export const crossTenantReference: DataRule = {
  kind: 'data',
  name: 'cross-tenant-reference',
  description: 'rows whose referenced row (any foreign key between tenant tables, self-references included) has another key',
  fix: "detach or re-point these references (the model's `conflicts` policy), then add the key to the foreign key (`scaffold --composite`)",
  level: always('error'),
  queries: (scope) => {
    const withKey = new Set(keyed(scope).map((t) => t.name));
    const referencedHasKey = (e: ScopedEdge): boolean =>
      withKey.has(e.references) ||
      scope.catalog.tables.some((t) => t.name === e.references && t.columns.some((c) => c.name === e.referencedKey));
    // Keys of two types do not compare (`bigint = text`): tenant-key-type-mismatch reports them.
    const sameType = (t: ScopedTable, e: ScopedEdge): boolean =>
      scope.catalog.tables.find((r) => r.name === e.references)?.columns.find((c) => c.name === e.referencedKey)?.type === keyType(t);
    return keyed(scope).flatMap((t) =>
      t.edges.filter((e) => !e.includesKey && referencedHasKey(e) && sameType(t, e)).map((e) => crossTenantQuery(t, e)),
    );
  },
};

export function crossTenantQuery(table: ScopedTable, edge: ScopedEdge): DataQuery {
  const join = edge.columns.map((c, i) => `p.${quoteIdent(edge.referencedColumns[i] as string)} = c.${quoteIdent(c)}`).join(' AND ');
  const [childKey, parentKey] = [`c.${quoteIdent(table.key)}`, `p.${quoteIdent(edge.referencedKey)}`];
  const from = `  FROM ${quoteQualified(table.name)} c\n  JOIN ${quoteQualified(edge.references)} p ON ${join}\n WHERE ${parentKey} <> ${childKey}`;
  const id = rowIdentity(table, 'c');
  const refs = edge.columns.map((c) => `c.${quoteIdent(c)}`);
  const shown = [...id.columns, ...refs, childKey, `${parentKey} AS ${quoteIdent(`referenced ${edge.referencedKey}`)}`];
  // `conflicts: {column: keep}` in the model allows these rows: reported, as a warning.
  const kept = table.analysis.consistency.some((c) => c.constraint === edge.constraint && c.policy === 'keep');
  return {
    table: table.name,
    detail: `${edge.label}: the referenced row is of another tenant${kept ? ' (kept by the model: conflicts keep)' : ''}`,
    ...(kept ? { level: 'warning' as const } : {}),
    sql: violationQuery(`${edge.label} (${edge.constraint}): references into another tenant`, shown, from, id.order),
  };
}
