/**
 * The shape of an isolation rule. Three kinds, one interface each:
 * - a **catalog** rule is a pure function of the scope (catalog + analysis);
 * - a **data** rule builds SQL text (pure) that the runner executes in one snapshot:
 *   the first rows in violation, each carrying the count of all of them;
 * - a **probe** rule's findings come from the live probe (`--as ROLE`, check-probe.ts).
 */
import type { CheckScope, ScopedTable } from '../check-scope.js';
import type { Catalog, TableName, TenancyAnalysis } from '../types.js';

export type Level = 'error' | 'warning';

export interface Finding {
  rule: string;
  level: Level;
  table: TableName;
  detail: string;
  /** Rows in violation (data and probe rules); null for a finding about the schema. */
  rows: number | null;
  /** The first rows in violation: their primary key values (and what the rule compares). */
  sample: Record<string, unknown>[];
}

/** A finding as a rule reports it; the runner adds the rule's name and level. */
export type RuleFinding = Omit<Finding, 'rule' | 'level'>;

interface RuleBase {
  name: string;
  /** What it finds, in one line (the rules table of README.md). */
  description: string;
  /** What to do about a finding. */
  fix: string;
  /**
   * The level for this model, or null when the rule does not apply to it (the RLS rules
   * without `rls`; the Citus rules without a catalog that has the extension).
   */
  level(analysis: TenancyAnalysis, catalog?: Catalog): Level | null;
}

/** A parser a catalog rule may need (WebAssembly, loaded only when needed): policy expressions, or function bodies. */
export type Parser = 'expression' | 'body';

export interface CatalogRule extends RuleBase {
  kind: 'catalog';
  check(scope: CheckScope): RuleFinding[];
  /** The parsers `check` needs on this scope, loaded before it runs; none when omitted. */
  parses?(scope: CheckScope): Parser[];
}

/**
 * One query of a data rule: one pass that returns the first rows in violation, each with
 * the count of all of them (`count(*) OVER ()` in the column `violationsColumn`): no rows,
 * no violation. One scan where a count and then a sample would take two.
 */
export interface DataQuery {
  table: TableName;
  detail: string;
  sql: string;
  /** Overrides the rule's level for this query (a conflict the model keeps is a warning). */
  level?: Level;
}

export const violationsColumn = 'violations (all)';

export interface DataRule extends RuleBase {
  kind: 'data';
  queries(scope: CheckScope): DataQuery[];
}

export interface ProbeRule extends RuleBase {
  kind: 'probe';
}

export type Rule = CatalogRule | DataRule | ProbeRule;

export const always = (level: Level) => (): Level => level;
export const whenRls = (analysis: TenancyAnalysis): Level | null => (analysis.rls ? 'error' : null);
export const whenCitus = (_analysis: TenancyAnalysis, catalog?: Catalog): Level | null =>
  catalog?.extensions.includes('citus') ? 'error' : null;

/** Tables whose key column exists: the rules that read the key skip the others (tenant-key-missing reports them). */
export function keyed(scope: CheckScope): ScopedTable[] {
  return scope.tables.filter((t) => t.hasKey);
}

/** Every rule but the key's own skips the owner when it is the tenants table: its key is its primary key. */
export function withKeyColumn(scope: CheckScope): ScopedTable[] {
  return keyed(scope).filter((t) => !t.keyIsPrimaryKey);
}

/** The key column's type on a table (format_type()). */
export function keyType(table: ScopedTable): string | undefined {
  return table.catalog.columns.find((c) => c.name === table.key)?.type;
}

/** The type of the column the keys name: the tenants table's primary key. */
export function tenantsKeyType(scope: CheckScope): string | undefined {
  const tenants = scope.tenants;
  return tenants?.table.columns.find((c) => c.name === tenants.column)?.type;
}

/**
 * Tables whose key has the tenants table's type: the data rules compare keys with `=` and skip
 * the others (`bigint = text` has no operator; tenant-key-type-mismatch reports them).
 */
export function comparable(scope: CheckScope): ScopedTable[] {
  const type = tenantsKeyType(scope);
  return withKeyColumn(scope).filter((t) => type === undefined || keyType(t) === type);
}
