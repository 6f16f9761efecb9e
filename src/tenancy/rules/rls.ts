/** Row level security on every tenant table: enabled, forced (the owner too), with a policy. */
import { keyed, whenRls, type CatalogRule } from './types.js';

export const rlsDisabled: CatalogRule = {
  kind: 'catalog',
  name: 'rls-disabled',
  description: 'row level security is not enabled',
  fix: 'ALTER TABLE ... ENABLE ROW LEVEL SECURITY (with a policy on the key first)',
  level: whenRls,
  check: (scope) =>
    scope.tables
      .filter((t) => !t.catalog.rls.enabled)
      .map((t) => ({ table: t.name, detail: 'row level security is disabled', rows: null, sample: [] })),
};

export const rlsNotForced: CatalogRule = {
  kind: 'catalog',
  name: 'rls-not-forced',
  description: "row level security is not forced: the table's owner bypasses it",
  fix: 'ALTER TABLE ... FORCE ROW LEVEL SECURITY',
  level: whenRls,
  check: (scope) =>
    scope.tables
      .filter((t) => t.catalog.rls.enabled && !t.catalog.rls.forced)
      .map((t) => ({ table: t.name, detail: `not forced: its owner ${t.catalog.owner} bypasses the policies`, rows: null, sample: [] })),
};

export const rlsNoPolicy: CatalogRule = {
  kind: 'catalog',
  name: 'rls-no-policy',
  description: 'row level security enabled without any policy',
  fix: "CREATE POLICY ... USING (key = current_setting('<setting>')::<type>) WITH CHECK (same)",
  level: whenRls,
  check: (scope) =>
    keyed(scope)
      .filter((t) => t.catalog.rls.enabled && !t.catalog.policies.some((p) => p.permissive))
      .map((t) => ({
        table: t.name,
        detail:
          t.catalog.policies.length === 0
            ? 'no policy: every row is hidden from every role but the bypassing ones'
            : 'only restrictive policies: nothing is admitted',
        rows: null,
        sample: [],
      })),
};
