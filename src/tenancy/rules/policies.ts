/**
 * Policies judged from their parse tree (policy-expr.ts): each must compare the key with
 * the setting, none may admit every row, and none may let a write give a row another
 * tenant's key.
 */
import type { CheckScope } from '../check-scope.js';
import { judgePolicy, type PolicyFaults } from '../policy-expr.js';
import { keyed, whenRls, type CatalogRule, type RuleFinding } from './types.js';

function policyFindings(scope: CheckScope, fault: keyof PolicyFaults): RuleFinding[] {
  const compare = { setting: scope.analysis.setting };
  return keyed(scope).flatMap((t) =>
    t.catalog.policies.flatMap((p) => {
      const reason = judgePolicy(p, { ...compare, key: t.key })[fault];
      return reason ? [{ table: t.name, detail: `policy ${p.name} (${p.command.toUpperCase()}): ${reason}`, rows: null, sample: [] }] : [];
    }),
  );
}

export const policyIgnoresTenantKey: CatalogRule = {
  kind: 'catalog',
  name: 'policy-ignores-tenant-key',
  description: 'a policy whose expression does not compare the key with the setting',
  fix: "USING (key = current_setting('<setting>')::<type>): every OR branch must compare the key too",
  level: whenRls,
  check: (scope) => policyFindings(scope, 'ignoresKey'),
};

export const policyAlwaysTrue: CatalogRule = {
  kind: 'catalog',
  name: 'policy-always-true',
  description: 'a permissive policy that admits every row (`true`, `1 = 1`)',
  fix: 'drop the policy, or make it compare the key with the setting',
  level: whenRls,
  check: (scope) => policyFindings(scope, 'alwaysTrue'),
};

export const policyMissingWithCheck: CatalogRule = {
  kind: 'catalog',
  name: 'policy-missing-with-check',
  description: 'a policy that lets writes through without `WITH CHECK`',
  fix: "WITH CHECK (key = current_setting('<setting>')::<type>)",
  level: whenRls,
  check: (scope) => policyFindings(scope, 'writesThrough'),
};
