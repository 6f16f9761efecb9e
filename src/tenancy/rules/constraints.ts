/** Uniqueness and references that ignore the key: they hold across tenants, not within one. */
import { always, keyed, type CatalogRule } from './types.js';

export const uniqueWithoutTenantKey: CatalogRule = {
  kind: 'catalog',
  name: 'unique-without-tenant-key',
  description: 'a primary key or unique constraint of a tenant table without the key',
  fix: "include the key (unique (key, column)): a global unique lets one tenant learn of another's values, and blocks distributing by the key",
  level: always('warning'),
  check: (scope) =>
    keyed(scope).flatMap((t) => {
      const constraints = [...(t.catalog.primaryKey ? [{ name: 'primary key', kind: 'primary' as const, columns: t.catalog.primaryKey }] : []), ...t.catalog.uniques.filter((u) => u.kind === 'unique')];
      // A surrogate primary key is fine once a unique (key, primary key) stands beside it: references then go through the pair.
      const paired = (columns: string[]): boolean =>
        t.catalog.uniques.some((u) => u.columns.includes(t.key) && columns.every((c) => u.columns.includes(c))) ||
        t.catalog.indexes.some((i) => i.unique && i.valid && !i.partial && i.columns.includes(t.key) && columns.every((c) => i.columns.includes(c)));
      return constraints
        .filter((c) => !c.columns.includes(t.key))
        .filter((c) => !(c.kind === 'primary' && paired(c.columns)))
        .map((c) => ({ table: t.name, detail: `${c.kind === 'primary' ? 'primary key' : `unique ${c.name}`} (${c.columns.join(', ')}) does not include ${t.key}`, rows: null, sample: [] }));
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
      t.edges.filter((e) => !e.includesKey).map((e) => ({ table: t.name, detail: `${e.label} (${e.constraint}) does not pair ${t.key} with ${e.referencedKey}`, rows: null, sample: [] })),
    ),
};
