import { appReaders, tenantReads } from '../access.js';
import { shortName } from '../check-scope.js';
import { whenRls, type CatalogRule } from './types.js';

/** A materialized view over tenant tables the app role may read: its rows are a copy, and row level security never applies to a materialized view. */
export const materializedViewExposesTenants: CatalogRule = {
  kind: 'catalog',
  name: 'materialized-view-exposes-tenants',
  description: 'a materialized view over a tenant table readable by the app role (row level security does not apply to it)',
  fix: "REVOKE SELECT ON it FROM the app role, and read it through a view that filters on the key (WHERE key = current_setting('<setting>')::<type>), or drop it",
  level: whenRls,
  check: (scope) =>
    scope.access.relations
      .filter((r) => r.kind === 'matview')
      .flatMap((m) => {
        const readers = appReaders(scope.access, m.readers, m.owner, scope.appRole);
        if (readers.length === 0) return [];
        const tables = [
          ...new Set(tenantReads(scope.access, m.name, null, (n) => scope.tenantTables.has(n)).map((r) => shortName(r.table))),
        ];
        if (tables.length === 0) return [];
        return [
          {
            table: m.name,
            detail: `readable by ${readers.join(', ')}: a copy of every tenant's rows of ${tables.join(', ')}`,
            rows: null,
            sample: [],
          },
        ];
      }),
};
