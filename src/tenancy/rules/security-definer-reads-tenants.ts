import { appReaders, bypassReason } from '../access.js';
import { shortName } from '../check-scope.js';
import { bodyReads, resolveName } from '../function-body.js';
import { guardedTable } from './view-bypasses-rls.js';
import { whenRls, type CatalogRule, type RuleFinding } from './types.js';

/**
 * A SECURITY DEFINER function the app role may execute (PUBLIC may, unless revoked), owned
 * by a role that bypasses row level security, whose body reads a tenant table: every
 * caller reads as the owner. What the body reads comes from pg_depend for SQL-standard
 * bodies, else from its parse tree (function-body.ts); a body that runs dynamic SQL as
 * such an owner is reported too, since what it reads cannot be known.
 */
export const securityDefinerReadsTenants: CatalogRule = {
  kind: 'catalog',
  name: 'security-definer-reads-tenants',
  description:
    'a SECURITY DEFINER function the app role may execute, owned by a role that bypasses row level security, whose body reads a tenant table',
  fix: 'make it SECURITY INVOKER, or filter by the key inside it and REVOKE EXECUTE ... FROM PUBLIC; or give it an owner without BYPASSRLS on tables whose row level security is forced',
  level: whenRls,
  check: (scope) =>
    scope.access.functions.flatMap((f): RuleFinding[] => {
      const executors = appReaders(scope.access, f.executors, f.owner, scope.appRole);
      if (executors.length === 0) return [];
      const exists = (name: string): boolean =>
        scope.catalog.tables.some((t) => t.name === name) || scope.access.relations.some((r) => r.name === name);
      const body = f.dependsOn.length > 0 ? { names: [], dynamic: false } : bodyReads(f.language, f.source, f.definition);
      const path = f.searchPath ?? ['public'];
      const reads = [...new Set([...f.dependsOn, ...body.names.map((n) => resolveName(n, path, exists))])];
      const leaks = reads.flatMap((name) => {
        if (!scope.tenantTables.has(name)) return [];
        const table = guardedTable(scope, name);
        const reason = table ? bypassReason(scope.access, f.owner, table) : null;
        return reason ? [`reads ${shortName(name)} as ${f.owner}: ${reason}`] : [];
      });
      if (body.dynamic) {
        const owner = scope.access.roles.find((r) => r.name === f.owner);
        if (owner?.superuser || owner?.bypassRls)
          leaks.push(
            `runs dynamic SQL (EXECUTE) as ${f.owner}, who ${owner.superuser ? 'is a superuser' : 'has BYPASSRLS'}: what it reads cannot be known`,
          );
      }
      if (leaks.length === 0) return [];
      return [{ table: f.name, detail: `executable by ${executors.join(', ')}; ${leaks.join('; ')}`, rows: null, sample: [] }];
    }),
  // A body is parsed only for a function the app may execute whose reads pg_depend does not record.
  parses: (scope) =>
    scope.access.functions.some((f) => f.dependsOn.length === 0 && appReaders(scope.access, f.executors, f.owner, scope.appRole).length > 0)
      ? ['body']
      : [],
};
