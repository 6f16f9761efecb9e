/** The key column itself: there, NOT NULL, indexed. */
import { isNotNullCheck } from '../policy-expr.js';
import type { CheckScope } from '../check-scope.js';
import { always, keyed, withKeyColumn, type CatalogRule } from './types.js';

/** Tables whose key column may hold NULL as far as the column says; a check constraint may still forbid it. */
const nullableColumns = (scope: CheckScope) =>
  withKeyColumn(scope)
    .filter((t) => t.unresolved !== 'keep')
    .filter((t) => !t.catalog.columns.find((c) => c.name === t.key)?.notNull);

export const tenantKeyMissing: CatalogRule = {
  kind: 'catalog',
  name: 'tenant-key-missing',
  description: 'a tenant table without the key column',
  fix: 'add the key column (the plan `tenancy scaffold` writes does it, with its backfill)',
  level: always('error'),
  check: (scope) =>
    scope.tables.filter((t) => !t.hasKey).map((t) => ({ table: t.name, detail: `no column ${t.key}`, rows: null, sample: [] })),
};

export const tenantKeyNullable: CatalogRule = {
  kind: 'catalog',
  name: 'tenant-key-nullable',
  description: 'the key nullable (and no validated NOT NULL check), unless `unresolved: keep`',
  fix: 'ALTER TABLE ... ADD CHECK (key IS NOT NULL) NOT VALID; VALIDATE it; then SET NOT NULL (no long lock) and drop the check',
  level: always('error'),
  check: (scope) =>
    nullableColumns(scope)
      .filter((t) => !t.catalog.checks.some((c) => c.validated && isNotNullCheck(c.definition, t.key)))
      .map((t) => {
        const unvalidated = t.catalog.checks.find((c) => !c.validated && isNotNullCheck(c.definition, t.key));
        return {
          table: t.name,
          detail: `${t.key} is nullable${unvalidated ? ` (the check ${unvalidated.name} is NOT VALID)` : ''}`,
          rows: null,
          sample: [],
        };
      }),
  // A check constraint's definition is parsed (`CHECK (key IS NOT NULL)`): only where one may stand for NOT NULL.
  parses: (scope) => (nullableColumns(scope).some((t) => t.catalog.checks.length > 0) ? ['expression'] : []),
};

export const tenantKeyUnindexed: CatalogRule = {
  kind: 'catalog',
  name: 'tenant-key-unindexed',
  description: 'no index whose first column is the key',
  fix: 'CREATE INDEX CONCURRENTLY ON the table (key, ...): every query of a tenant, and every policy, filters on it',
  level: always('warning'),
  check: (scope) =>
    keyed(scope)
      .filter((t) => !t.catalog.indexes.some((i) => i.valid && !i.partial && i.columns[0] === t.key))
      .map((t) => ({ table: t.name, detail: `no valid, complete index starts with ${t.key}`, rows: null, sample: [] })),
};
