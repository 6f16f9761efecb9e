/**
 * Policies judged from their parse tree (policy-expr.ts): each must compare the key with
 * the setting, none may admit every row, and none may let a write give a row another
 * tenant's key.
 */
import type { CheckScope } from '../check-scope.js';
import { judgeExpression, judgePolicy, type KeyComparison, type PolicyFaults } from '../policy-expr.js';
import type { CatalogPolicy } from '../types.js';
import { keyed, whenRls, type CatalogRule, type Parser, type RuleFinding } from './types.js';

/**
 * Restrictive policies are judged with the permissive ones: PostgreSQL admits a row when
 * some permissive policy does AND every restrictive one does. So a restrictive policy
 * that holds the key to the setting, for the same command and every role the permissive
 * one applies to, isolates what the permissive one lets through (a permissive `true`
 * narrowed by a restrictive key policy is isolated).
 */
function narrows(restrictive: CatalogPolicy, permissive: CatalogPolicy, fault: keyof PolicyFaults, compare: KeyComparison): boolean {
  if (restrictive.permissive) return false;
  if (restrictive.command !== 'all' && restrictive.command !== permissive.command) return false;
  if (!restrictive.roles.includes('public') && !permissive.roles.every((r) => restrictive.roles.includes(r))) return false;
  const constrains = (text: string | null): boolean => text !== null && judgeExpression(text, compare).constrains;
  if (fault !== 'writesThrough') return constrains(restrictive.using);
  // New rows are held by WITH CHECK, or by USING when an ALL or UPDATE policy has none.
  return restrictive.withCheck !== null
    ? constrains(restrictive.withCheck)
    : restrictive.command !== 'insert' && constrains(restrictive.using);
}

function policyFindings(scope: CheckScope, fault: keyof PolicyFaults): RuleFinding[] {
  return keyed(scope).flatMap((t) => {
    const compare = { setting: scope.analysis.setting, key: t.key };
    return t.catalog.policies.flatMap((p) => {
      const reason = judgePolicy(p, compare)[fault];
      if (!reason || t.catalog.policies.some((r) => narrows(r, p, fault, compare))) return [];
      return [{ table: t.name, detail: `policy ${p.name} (${p.command.toUpperCase()}): ${reason}`, rows: null, sample: [] }];
    });
  });
}

/** The policies' expressions are parsed: only on a scope with policies. */
const parsesPolicies = (scope: CheckScope): Parser[] => (keyed(scope).some((t) => t.catalog.policies.length > 0) ? ['expression'] : []);

export const policyIgnoresTenantKey: CatalogRule = {
  kind: 'catalog',
  name: 'policy-ignores-tenant-key',
  description: 'a policy whose expression does not compare the key with the setting',
  fix: "USING (key = current_setting('<setting>')::<type>): every OR branch must compare the key too",
  level: whenRls,
  check: (scope) => policyFindings(scope, 'ignoresKey'),
  parses: parsesPolicies,
};

export const policyAlwaysTrue: CatalogRule = {
  kind: 'catalog',
  name: 'policy-always-true',
  description: 'a permissive policy that admits every row (`true`, `1 = 1`)',
  fix: 'drop the policy, or make it compare the key with the setting',
  level: whenRls,
  check: (scope) => policyFindings(scope, 'alwaysTrue'),
  parses: parsesPolicies,
};

export const policyMissingWithCheck: CatalogRule = {
  kind: 'catalog',
  name: 'policy-missing-with-check',
  description: 'a policy that lets writes through without `WITH CHECK`',
  fix: "WITH CHECK (key = current_setting('<setting>')::<type>)",
  level: whenRls,
  check: (scope) => policyFindings(scope, 'writesThrough'),
  parses: parsesPolicies,
};
