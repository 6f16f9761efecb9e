/**
 * The pure core of `tenancy check`: which rules apply to the model, what the catalog rules
 * find, which queries the data rules need, and how findings are ordered and judged. The
 * I/O lives in check-data.ts (the queries in one snapshot) and check-probe.ts (`--as`).
 */
import { UsageError } from '../errors.js';
import type { CheckScope } from './check-scope.js';
import { rules } from './rules/index.js';
import type { DataQuery, Finding, Level, Parser, Rule } from './rules/types.js';
import type { Catalog, TenancyAnalysis } from './types.js';

export interface ActiveRule {
  rule: Rule;
  level: Level;
}

/**
 * The rules that apply to the model (the RLS ones only with `rls`, the Citus ones only on a
 * catalog with the extension), or those named by `--rule`.
 */
export function selectRules(analysis: TenancyAnalysis, only?: string[], catalog?: Catalog): ActiveRule[] {
  const unknown = (only ?? []).filter((name) => !rules.some((r) => r.name === name));
  if (unknown.length > 0) {
    throw new UsageError(`--rule ${unknown.join(', ')}: no such rule`, {
      code: 'rule-unknown',
      hint: `rules: ${rules.map((r) => r.name).join(', ')}`,
    });
  }
  const active: ActiveRule[] = [];
  for (const rule of rules) {
    if (only?.length && !only.includes(rule.name)) continue;
    const level = rule.level(analysis, catalog);
    if (level) active.push({ rule, level });
  }
  return active;
}

export function catalogFindings(scope: CheckScope, active: ActiveRule[]): Finding[] {
  return active.flatMap(({ rule, level }) =>
    rule.kind === 'catalog' ? rule.check(scope).map((f) => ({ rule: rule.name, level, ...f })) : [],
  );
}

/** The parsers the active catalog rules need on this scope (none on a schema without policies or functions to read). */
export function parsersNeeded(scope: CheckScope, active: ActiveRule[]): Set<Parser> {
  return new Set(active.flatMap(({ rule }) => (rule.kind === 'catalog' ? (rule.parses?.(scope) ?? []) : [])));
}

export interface PlannedQuery extends DataQuery {
  rule: string;
  level: Level;
  /** The estimated rows of the table it reads: the runner starts the biggest first. */
  weight: number;
}

export function dataQueries(scope: CheckScope, active: ActiveRule[]): PlannedQuery[] {
  const rows = new Map(scope.catalog.tables.map((t) => [t.name, t.estimatedRows]));
  return active.flatMap(({ rule, level }) =>
    rule.kind === 'data'
      ? rule.queries(scope).map((q) => ({ ...q, rule: rule.name, level: q.level ?? level, weight: rows.get(q.table) ?? 0 }))
      : [],
  );
}

/** Errors before warnings; within a level, in the order of the rules' list, then by table. */
export function sortFindings(findings: Finding[]): Finding[] {
  const order = new Map(rules.map((r, i) => [r.name, i]));
  const rank = (f: Finding): number => (f.level === 'error' ? 0 : 1000) + (order.get(f.rule) ?? 999);
  return [...findings].sort((a, b) => rank(a) - rank(b) || a.table.localeCompare(b.table));
}

/** Exit 3 with an error-level finding; with `--strict`, with any finding. */
export function fails(findings: Finding[], strict: boolean): boolean {
  return findings.some((f) => f.level === 'error' || strict);
}
