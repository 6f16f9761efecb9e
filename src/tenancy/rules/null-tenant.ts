import type { CheckScope, ScopedTable } from '../check-scope.js';
import { quoteIdent, quoteQualified } from '../sql-text.js';
import type { Hop } from '../types.js';
import { rowIdentity, violationQuery } from './sample-sql.js';
import { always, withKeyColumn, type DataQuery, type DataRule } from './types.js';

/**
 * Rows without a tenant: no policy can place them, and `key = setting` hides them from
 * everyone (or, with a careless policy, shows them to all). `unresolved: keep` accepts a
 * NULL key only on rows no path resolves; a row whose parent along one of the model's
 * paths has a tenant is a row the backfill missed, and an error all the same.
 */
export const nullTenant: DataRule = {
  kind: 'data',
  name: 'null-tenant',
  description: 'rows whose key is NULL (with `unresolved: keep`, those a path of the model resolves)',
  fix: 'backfill the key of these rows (or delete them), then make the column NOT NULL',
  level: always('error'),
  queries: (scope) =>
    withKeyColumn(scope).flatMap((t): DataQuery[] => {
      const key = `t.${quoteIdent(t.key)}`;
      const id = rowIdentity(t, 't');
      if (t.unresolved !== 'keep') {
        const from = `  FROM ${quoteQualified(t.name)} t\n WHERE ${key} IS NULL`;
        return [
          {
            table: t.name,
            detail: `${t.key} is NULL`,
            sql: violationQuery(`${t.name}: rows without a tenant`, id.columns, from, id.order),
          },
        ];
      }
      const hops = firstHops(t).filter((h) =>
        scope.catalog.tables.some((p) => p.name === h.references && p.columns.some((c) => c.name === parentKey(scope, h))),
      );
      if (hops.length === 0) return [];
      const resolves = hops.map((hop) => `EXISTS (${parentHasTenant(scope, t, hop)})`).join('\n    OR ');
      const from = `  FROM ${quoteQualified(t.name)} t\n WHERE ${key} IS NULL\n   AND (${resolves})`;
      const via = hops.map((h) => `${h.columns.filter((c) => c !== t.key).join(', ')} → ${h.references}`).join(' or ');
      return [
        {
          table: t.name,
          detail: `${t.key} is NULL though the row's parent (${via}) has a tenant: a row the backfill missed (unresolved: keep allows only rows no path resolves)`,
          sql: violationQuery(`${t.name}: rows without a tenant that a path of the model resolves`, id.columns, from, id.order),
        },
      ];
    }),
};

/** The first hop of the derivation and of each fallback, once each. */
function firstHops(table: ScopedTable): Hop[] {
  const hops = [table.analysis.via[0], ...table.analysis.fallbacks.map((path) => path[0])].filter((h): h is Hop => h !== undefined);
  return hops.filter((h, i) => hops.findIndex((o) => o.constraint === h.constraint) === i);
}

/** The parent row along `hop` (its columns but the key, which is NULL here), with a tenant. */
function parentHasTenant(scope: CheckScope, table: ScopedTable, hop: Hop): string {
  const pairs = hop.columns.map((c, i) => [c, hop.referencedColumns[i] as string] as const).filter(([c]) => c !== table.key);
  const join = pairs.map(([c, r]) => `p.${quoteIdent(r)} = t.${quoteIdent(c)}`).join(' AND ');
  return `SELECT 1 FROM ${quoteQualified(hop.references)} p WHERE ${join} AND p.${quoteIdent(parentKey(scope, hop))} IS NOT NULL`;
}

/** The key column of the table a hop references (the owner's primary key when it is the tenants table). */
function parentKey(scope: CheckScope, hop: Hop): string {
  const { analysis } = scope;
  return hop.references === analysis.owner && analysis.ownerIsTenants ? (scope.tenants?.column ?? analysis.key) : analysis.key;
}
