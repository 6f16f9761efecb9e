import { shortName } from '../check-scope.js';
import { always, keyType, tenantsKeyType, withKeyColumn, type CatalogRule } from './types.js';

/** A key of another type than the tenants' primary key: keys do not compare (`bigint = text`) and no foreign key can pair them. */
export const tenantKeyTypeMismatch: CatalogRule = {
  kind: 'catalog',
  name: 'tenant-key-type-mismatch',
  description: "a key column whose type differs from the tenants table's primary key",
  fix: "give the key the tenants' type: add a column of that type, backfill it in batches, swap it in (ALTER COLUMN ... TYPE rewrites the table under an exclusive lock)",
  level: always('error'),
  check: (scope) => {
    const type = tenantsKeyType(scope);
    const tenants = scope.tenants;
    if (!type || !tenants) return [];
    return withKeyColumn(scope)
      .filter((t) => keyType(t) !== type)
      .map((t) => ({
        table: t.name,
        detail: `${t.key} is ${keyType(t) ?? '?'}, ${shortName(tenants.table.name)}.${tenants.column} is ${type}: its keys are not checked against the tenants (no dangling-tenant or cross-tenant-reference query runs on it)`,
        rows: null,
        sample: [],
      }));
  },
};
