/** What schema.prisma must learn of a scaffolded plan, read from the scaffold's own model and units. */
import { compositeEdges, keyNames, uniqueName } from '../scaffold/plan.js';
import { bare, ScaffoldModel, type ScaffoldOptions } from '../scaffold/model.js';
import type { ScaffoldUnit } from '../scaffold/plan.js';
import { quoteIdent } from '../sql-text.js';
import type { Catalog, TenancyAnalysis } from '../types.js';
import type { TenancyFacts } from './tenancy-edits.js';

export function tenancyFacts(analysis: TenancyAnalysis, catalog: Catalog, options: ScaffoldOptions, units: ScaffoldUnit[]): TenancyFacts {
  const m = new ScaffoldModel(analysis, catalog, options);
  const written = units.map((u) => u.sql).join('\n');
  // --composite (scaffold/plan.ts, step 6): unique (key, id) on referenced tables, foreign keys that include the key.
  const edges =
    options.composite && !options.citus ? compositeEdges(m).filter((e) => e.places.length === 1 && e.places[0]?.table === e.from.name) : [];
  const uniques = new Map<string, { table: string; name: string; columns: string[] }>();
  for (const e of edges) {
    const name = uniqueName(e.to, e.referencedColumns);
    uniques.set(name, { table: bare(e.to.name), name, columns: [e.to.keyColumn, ...e.referencedColumns] });
  }
  return {
    tenantsTable: bare(analysis.tenants),
    createsTenants: m.createsTenants,
    tenantsPk: m.tenantsPk,
    ownerTable: bare(analysis.owner),
    legacyColumn: m.legacyColumn,
    uniques: [...uniques.values()],
    compositeForeignKeys: edges.map((e) => ({
      table: bare(e.from.name),
      name: e.name,
      columns: [e.from.keyColumn, ...e.columns],
      references: bare(e.to.name),
      referencedColumns: [e.to.keyColumn, ...e.referencedColumns],
      onUpdateCascade: e.derivation,
    })),
    keyed: m.keyed.map((t) => {
      const names = keyNames(t);
      return {
        table: bare(t.name),
        keyColumn: t.keyColumn,
        addsKey: t.addsKey,
        // The plan leaves the key nullable where unresolved rows are kept (scaffold/plan.ts, step 5).
        optional: t.analysis.unresolvedPolicy === 'keep' && !t.isOwner,
        foreignKey: written.includes(`ADD CONSTRAINT ${quoteIdent(names.fk)} `) ? names.fk : undefined,
        index: [`INDEX CONCURRENTLY IF NOT EXISTS ${quoteIdent(names.index)} `, `INDEX IF NOT EXISTS ${quoteIdent(names.index)} `].some(
          (s) => written.includes(s),
        )
          ? names.index
          : undefined,
      };
    }),
  };
}
