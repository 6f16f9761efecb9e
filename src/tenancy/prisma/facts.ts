/** What schema.prisma must learn of a scaffolded plan, read from the scaffold's own model and units. */
import { keyNames } from '../scaffold/plan.js';
import { bare, ScaffoldModel, type ScaffoldOptions } from '../scaffold/model.js';
import type { ScaffoldUnit } from '../scaffold/plan.js';
import { quoteIdent } from '../sql-text.js';
import type { Catalog, TenancyAnalysis } from '../types.js';
import type { TenancyFacts } from './tenancy-edits.js';

export function tenancyFacts(analysis: TenancyAnalysis, catalog: Catalog, options: ScaffoldOptions, units: ScaffoldUnit[]): TenancyFacts {
  const m = new ScaffoldModel(analysis, catalog, options);
  const written = units.map((u) => u.sql).join('\n');
  return {
    tenantsTable: bare(analysis.tenants),
    createsTenants: m.createsTenants,
    tenantsPk: m.tenantsPk,
    ownerTable: bare(analysis.owner),
    legacyColumn: m.legacyColumn,
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
