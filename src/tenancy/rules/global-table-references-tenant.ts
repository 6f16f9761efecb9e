import { shortName } from '../check-scope.js';
import { namedTenantReferences } from './reference-names.js';
import { always, type CatalogRule, type RuleFinding } from './types.js';

/**
 * A table the model calls global (or that no path reaches) whose rows point at tenant
 * rows: a foreign key to a tenant table or the owner, or a column that names one without a
 * foreign key (`task_id` beside `tasks`). Its rows belong to tenants but carry no key, so
 * no policy can keep them apart. Tables that carry the key are tenant tables (in scope).
 */
export const globalTableReferencesTenant: CatalogRule = {
  kind: 'catalog',
  name: 'global-table-references-tenant',
  description:
    'a table the model calls global (or no path reaches) that references tenant rows: a foreign key to a tenant table, or a column that names one. Its rows belong to tenants but carry no key',
  fix: 'make it a tenant table: the foreign key to its parent (NOT VALID, then VALIDATE) so a path reaches it, or `via` in the model; then scaffold its key. Mark it "ignore" only if no role may read it',
  level: always('error'),
  check: (scope) =>
    scope.analysis.tables
      .filter((a) => a.role === 'global' && a.table !== scope.analysis.tenants && !scope.tenantTables.has(a.table))
      .flatMap((a): RuleFinding[] => {
        const table = scope.catalog.tables.find((t) => t.name === a.table);
        if (!table) return [];
        const references = [
          ...table.foreignKeys
            .filter((fk) => fk.references !== table.name && scope.tenantTables.has(fk.references))
            .map((fk) => `${fk.columns.join(', ')} → ${shortName(fk.references)} (${fk.name})`),
          ...namedTenantReferences(scope, table).map((n) => `${n.column} names ${shortName(n.references)} (no foreign key)`),
        ];
        if (references.length === 0) return [];
        return [
          {
            table: table.name,
            detail: `no ${scope.analysis.key}, yet its rows reference tenant rows: ${references.join('; ')}`,
            rows: null,
            sample: [],
          },
        ];
      }),
};
