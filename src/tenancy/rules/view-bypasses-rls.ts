import { appReaders, bypassReason, tenantReads, type GuardedTable } from '../access.js';
import type { CheckScope } from '../check-scope.js';
import { shortName } from '../check-scope.js';
import { whenRls, type CatalogRule, type RuleFinding } from './types.js';

/** A tenant table as the walk sees it (owner, row level security), by name. */
export function guardedTable(scope: CheckScope, name: string): GuardedTable | undefined {
  return scope.catalog.tables.find((t) => t.name === name);
}

/**
 * A view the app role may read that reads a tenant table past its policies: the view does
 * not run as the invoker, so the table is read as the view's owner, who bypasses row level
 * security (a superuser, BYPASSRLS, or the table's owner while it is not forced). Views
 * over views are followed, each switching to its owner unless it is `security_invoker`;
 * a materialized view on the way is a copy the policies never see.
 */
export const viewBypassesRls: CatalogRule = {
  kind: 'catalog',
  name: 'view-bypasses-rls',
  description:
    'a view over a tenant table, readable by the app role, that does not run as the invoker while its owner bypasses row level security',
  fix: 'ALTER VIEW ... SET (security_invoker = true) (the policies then apply to whoever reads it), or give the view an owner without BYPASSRLS on tables whose row level security is forced',
  level: whenRls,
  check: (scope) =>
    scope.access.relations
      .filter((r) => r.kind === 'view')
      .flatMap((view): RuleFinding[] => {
        const readers = appReaders(scope.access, view.readers, view.owner, scope.appRole);
        if (readers.length === 0) return [];
        const leaks = tenantReads(scope.access, view.name, scope.appRole ?? null, (n) => scope.tenantTables.has(n)).flatMap((read) => {
          const path = read.through.map(shortName).join(' → ');
          if (read.materialized)
            return [`${path}: through the materialized view ${shortName(read.materialized)}, a copy row level security does not apply to`];
          const table = guardedTable(scope, read.table);
          const reason = read.as && table ? bypassReason(scope.access, read.as, table) : null;
          return reason ? [`${path} as ${read.as}: ${reason}`] : [];
        });
        if (leaks.length === 0) return [];
        return [
          {
            table: view.name,
            detail: `readable by ${readers.join(', ')}; every tenant's rows: ${[...new Set(leaks)].join('; ')}`,
            rows: null,
            sample: [],
          },
        ];
      }),
};
