/** Columns that name a tenant table without a foreign key (`task_id` beside `tasks`): what a reader would take for a reference. */
import type { CheckScope } from '../check-scope.js';
import { singular } from '../graph.js';
import type { CatalogTable, TableName } from '../types.js';

const norm = (s: string): string => s.toLowerCase().replace(/_/g, '');

/** `task_id` → `task`, `taskId` → `task`; undefined for a column that does not look like a reference. */
function referenceBase(column: string): string | undefined {
  return /^(.+)_id$/i.exec(column)?.[1] ?? /^(.*[a-z0-9])Id$/.exec(column)?.[1];
}

/** The tenant tables `table`'s columns name without a foreign key, by column. */
export function namedTenantReferences(scope: CheckScope, table: CatalogTable): { column: string; references: TableName }[] {
  const byName = new Map<string, TableName>();
  for (const name of scope.tenantTables) {
    const bare = name.slice(name.indexOf('.') + 1);
    byName.set(norm(singular(bare)), name);
  }
  const referencing = new Set(table.foreignKeys.flatMap((fk) => fk.columns));
  return table.columns.flatMap((c) => {
    const base = referenceBase(c.name);
    if (!base || referencing.has(c.name) || c.name === scope.analysis.key) return [];
    const target = byName.get(norm(singular(base)));
    return target && target !== table.name ? [{ column: c.name, references: target }] : [];
  });
}
