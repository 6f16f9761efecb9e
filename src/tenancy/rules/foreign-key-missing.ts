import { shortName } from '../check-scope.js';
import { namedTenantReferences } from './reference-names.js';
import { always, withKeyColumn, type CatalogRule, type RuleFinding } from './types.js';

/**
 * A tenant table's foreign keys that are not there: on the key to the tenants table (any
 * key is then accepted, a tenant that does not exist included), and, for a table that
 * carries the key but that no path of foreign keys reaches, to its parent: nothing keeps
 * its key in step with the row it belongs to.
 */
export const foreignKeyMissing: CatalogRule = {
  kind: 'catalog',
  name: 'foreign-key-missing',
  description:
    'a tenant table without a foreign key from its key to the tenants table, or one that carries the key while no foreign key leads to the owner',
  fix: 'ALTER TABLE ... ADD FOREIGN KEY (key) REFERENCES tenants NOT VALID, then VALIDATE it; and the foreign key to its parent ((key, parent_id) with `scaffold --composite`)',
  level: always('error'),
  check: (scope) => {
    const tenants = scope.tenants;
    return withKeyColumn(scope).flatMap((t): RuleFinding[] => {
      const found: RuleFinding[] = [];
      const toTenants =
        tenants &&
        t.catalog.foreignKeys.some(
          (fk) =>
            fk.references === tenants.table.name && fk.columns.some((c, i) => c === t.key && fk.referencedColumns[i] === tenants.column),
        );
      if (tenants && !toTenants) {
        found.push({
          table: t.name,
          detail: `no foreign key from ${t.key} to ${shortName(tenants.table.name)}: a key may name a tenant that does not exist`,
          rows: null,
          sample: [],
        });
      }
      if (!t.reached) {
        const named = namedTenantReferences(scope, t.catalog);
        const looks = named.length
          ? `; ${named.map((n) => `${n.column} looks like a reference to ${shortName(n.references)}`).join(', ')}`
          : '';
        found.push({
          table: t.name,
          detail: `carries ${t.key} but no foreign key leads from it to the owner: its key is neither derived nor checked against its parent${looks}`,
          rows: null,
          sample: [],
        });
      }
      return found;
    });
  },
};
