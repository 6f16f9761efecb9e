/**
 * Where Citus places the tables of the tenancy: every tenant table sharded by the key and
 * colocated with the tenants table (a tenant's rows, and the joins between them, on one
 * node), and every global table they reference copied whole to each node (a reference
 * table). Active only on a database with the citus extension, and silent until some table
 * of the tenancy is distributed: a database with Citus installed but not scaled out yet has
 * nothing to report here.
 */
import type { CheckScope } from '../check-scope.js';
import { shortName } from '../check-scope.js';
import type { CatalogDistribution } from '../types.js';
import { whenCitus, type CatalogRule, type RuleFinding } from './types.js';

/** Some table of the tenancy (the tenants table included) is known to Citus. */
function scaledOut(scope: CheckScope): boolean {
  return Boolean(scope.tenants?.table.distribution) || scope.tables.some((t) => Boolean(t.catalog.distribution));
}

/** How a finding names where a table lives. */
export function placement(d: CatalogDistribution | null | undefined): string {
  if (!d) return 'a plain local table (unknown to Citus)';
  if (d.method === 'reference') return 'a reference table (copied to every node)';
  if (d.method === 'local') return 'a Citus local table (on the coordinator only)';
  if (d.method === 'hash') return `distributed by ${d.column ?? '?'}`;
  return `${d.method}-distributed by ${d.column ?? '?'}`;
}

const hashedBy = (d: CatalogDistribution | null | undefined, column: string): boolean => d?.method === 'hash' && d.column === column;

export const distributionKeyMismatch: CatalogRule = {
  kind: 'catalog',
  name: 'distribution-key-mismatch',
  description: 'with Citus: a tenant table not distributed by the key, or not colocated with the tenants table',
  fix: "SELECT undistribute_table('<table>'), then create_distributed_table('<table>', '<key>', colocate_with => '<tenants>') (`scaffold --citus`); one key type everywhere, or the tables cannot be colocated",
  level: whenCitus,
  check: (scope) => {
    if (!scaledOut(scope)) return [];
    const findings: RuleFinding[] = [];
    const tenants = scope.tenants;
    const anchor = tenants?.table.distribution;
    if (tenants && !hashedBy(anchor, tenants.column)) {
      findings.push({
        table: tenants.table.name,
        detail: `the tenants table is ${placement(anchor)}, not distributed by ${tenants.column}`,
        rows: null,
        sample: [],
      });
    }
    for (const t of scope.tables) {
      if (t.name === tenants?.table.name || !t.hasKey) continue;
      const d = t.catalog.distribution;
      if (!hashedBy(d, t.key)) {
        findings.push({
          table: t.name,
          detail: `${placement(d)}, not by ${t.key}: a tenant's rows are not kept on one node`,
          rows: null,
          sample: [],
        });
      } else if (tenants && hashedBy(anchor, tenants.column) && d?.colocationId !== anchor?.colocationId) {
        findings.push({
          table: t.name,
          detail: `distributed by ${t.key} but not colocated with ${shortName(tenants.table.name)} (colocation group ${d?.colocationId}, the tenants table's ${anchor?.colocationId}): joins on the key cross nodes`,
          rows: null,
          sample: [],
        });
      }
    }
    return findings;
  },
};

export const referenceTableMissing: CatalogRule = {
  kind: 'catalog',
  name: 'reference-table-missing',
  description: 'with Citus: a global table that tenant tables reference, not a reference table',
  fix: "SELECT create_reference_table('<table>') (`scaffold --citus`): a copy on every node, so each shard's foreign keys and joins to it stay local",
  level: whenCitus,
  check: (scope) => {
    if (!scaledOut(scope)) return [];
    const inScope = new Set(scope.tables.map((t) => t.name));
    const byName = new Map(scope.catalog.tables.map((t) => [t.name, t]));
    return scope.analysis.tables
      .filter((a) => a.role === 'global' && a.table !== scope.analysis.tenants)
      .flatMap((a): RuleFinding[] => {
        const users = a.referencedBy.filter((name) => inScope.has(name) && name !== a.table);
        const d = byName.get(a.table)?.distribution;
        if (users.length === 0 || d?.method === 'reference') return [];
        return [{ table: a.table, detail: `${placement(d)}, referenced by ${users.map(shortName).join(', ')}`, rows: null, sample: [] }];
      });
  },
};
