/**
 * Uniqueness and references that ignore the key: they hold across tenants, not within one.
 * What a composite key covers is accepted: a single-column foreign key beside one that
 * pairs the key with the same columns (`scaffold --composite` keeps the legacy one), a
 * primary key that no foreign key references without the key, and the owner's uniques
 * when there is one owner row per tenant (the tenants table the plan made, with its unique
 * `legacy_<owner>_id`, or a unique key alone on the owner): a unique among those rows is a
 * unique among tenants.
 */
import type { CheckScope, ScopedEdge, ScopedTable } from '../check-scope.js';
import { always, keyed, type CatalogRule } from './types.js';

export const uniqueWithoutTenantKey: CatalogRule = {
  kind: 'catalog',
  name: 'unique-without-tenant-key',
  description: 'a primary key or unique constraint of a tenant table without the key',
  fix: "include the key (unique (key, column)): a global unique lets one tenant learn of another's values, and blocks distributing by the key",
  level: always('warning'),
  check: (scope) =>
    keyed(scope).flatMap((t) => {
      if (t.role === 'owner' && onePerTenant(scope, t)) return [];
      const constraints = [
        ...(t.catalog.primaryKey ? [{ name: 'primary key', kind: 'primary' as const, columns: t.catalog.primaryKey }] : []),
        ...t.catalog.uniques.filter((u) => u.kind === 'unique'),
      ];
      // A primary key no foreign key references by itself: nothing reaches across tenants through it.
      const referencedAlone = (columns: string[]): boolean =>
        scope.catalog.tables.some((r) =>
          r.foreignKeys.some(
            (fk) =>
              fk.references === t.name && !fk.columns.includes(scope.analysis.key) && fk.referencedColumns.join(',') === columns.join(','),
          ),
        );
      // A surrogate primary key is fine once a unique (key, primary key) stands beside it: references then go through the pair.
      const paired = (columns: string[]): boolean =>
        t.catalog.uniques.some((u) => u.columns.includes(t.key) && columns.every((c) => u.columns.includes(c))) ||
        t.catalog.indexes.some(
          (i) => i.unique && i.valid && !i.partial && i.columns.includes(t.key) && columns.every((c) => i.columns.includes(c)),
        );
      return constraints
        .filter((c) => !c.columns.includes(t.key))
        .filter((c) => !(c.kind === 'primary' && (paired(c.columns) || !referencedAlone(c.columns))))
        .map((c) => ({
          table: t.name,
          detail: `${c.kind === 'primary' ? 'primary key' : `unique ${c.name}`} (${c.columns.join(', ')}) does not include ${t.key}`,
          rows: null,
          sample: [],
        }));
    }),
};

export const foreignKeyWithoutTenantKey: CatalogRule = {
  kind: 'catalog',
  name: 'foreign-key-without-tenant-key',
  description: 'a foreign key between tenant tables that does not include the key',
  fix: 'reference (key, id) instead of (id) (`scaffold --composite`): the database then refuses a reference into another tenant',
  level: always('warning'),
  check: (scope) =>
    keyed(scope).flatMap((t) =>
      t.edges
        .filter((e) => !e.includesKey && !coveredByComposite(t, e))
        .map((e) => ({
          table: t.name,
          detail: `${e.label} (${e.constraint}) does not pair ${t.key} with ${e.referencedKey}`,
          rows: null,
          sample: [],
        })),
    ),
};

/** A single-column foreign key beside one from (key, the same columns) to the same table, which pairs the key: the composite one holds every row to its tenant. */
function coveredByComposite(table: ScopedTable, edge: ScopedEdge): boolean {
  return table.edges.some(
    (e) =>
      e.includesKey && e.references === edge.references && e.columns.filter((c) => c !== table.key).join(',') === edge.columns.join(','),
  );
}

/** The owner has one row per tenant: the tenants table maps each to one (`legacy_<owner>_id`, unique), or the key alone is unique on the owner. */
function onePerTenant(scope: CheckScope, owner: ScopedTable): boolean {
  const unique = (table: ScopedTable['catalog'], column: string): boolean =>
    table.uniques.some((u) => u.columns.length === 1 && u.columns[0] === column) ||
    table.indexes.some((i) => i.unique && i.valid && !i.partial && i.columns.length === 1 && i.columns[0] === column);
  const tenants = scope.tenants?.table;
  return unique(owner.catalog, owner.key) || (tenants !== undefined && unique(tenants, `legacy_${owner.catalog.table}_id`));
}
