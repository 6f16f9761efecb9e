/**
 * What a row level security expression admits, read from PostgreSQL's own parse tree
 * (pg-parser.ts) of the text `pg_get_expr()` gives, never from regular expressions: a
 * policy written `organization_id::text = current_setting('app.tenant_id', true)` and one
 * written `(current_setting('app.tenant_id'))::int = organization_id` say the same thing.
 *
 * Pure once the parser is loaded (`loadExpressionParser()`, one WebAssembly module).
 *
 * Two questions are asked of an expression:
 * - does it **constrain** every row to the tenant named by the setting? It does when it is
 *   `key = current_setting('<setting>')` (casts on either side, either order, the
 *   setting's `missing_ok` argument or a scalar sub-select around it), or an AND with such
 *   a conjunct. An OR constrains only when every branch does: one branch that does not
 *   (`current_setting('app.tenant_id', true) IS NULL`, `is_admin`) admits rows of every
 *   tenant whenever it is true.
 * - is it **always true**? `true`, `1 = 1`, `NOT false`, an OR with an always-true branch,
 *   an AND of always-true conjuncts: any constant expression that evaluates to true.
 */
import { loadedPgParser, loadPgParser } from './pg-parser.js';

type Node = Record<string, unknown>;
type ParseSync = (sql: string) => { stmts?: { stmt: Node }[] };

export async function loadExpressionParser(): Promise<void> {
  await loadPgParser();
}

function loadedParser(): ParseSync {
  return loadedPgParser('loadExpressionParser').parseSync as ParseSync;
}

export interface ExpressionVerdict {
  /** Every row it admits has the key equal to the setting. */
  constrains: boolean;
  /** It admits every row. */
  alwaysTrue: boolean;
  /** Why it does not constrain (the branch or conjunct at fault, as SQL), when it does not. */
  reason?: string;
}

export interface KeyComparison {
  /** The tenant key column of the table the expression belongs to. */
  key: string;
  /** The custom setting holding the current tenant, e.g. `app.tenant_id`. */
  setting: string;
}

/** Parses one expression (as `SELECT <expr>`); throws when the text does not parse. */
export function parseExpression(text: string): Node {
  const tree = loadedParser()(`SELECT ${text}`);
  const select = tree.stmts?.[0]?.stmt['SelectStmt'] as { targetList?: { ResTarget: { val: Node } }[] } | undefined;
  const value = select?.targetList?.[0]?.ResTarget.val;
  if (!value || (select?.targetList?.length ?? 0) !== 1) throw new Error(`not one expression: ${text}`);
  return value;
}

export function judgeExpression(text: string, compare: KeyComparison): ExpressionVerdict {
  const node = parseExpression(text);
  const alwaysTrue = evaluate(node) === true;
  const fault = unconstrainedPart(node, compare);
  if (fault === null) return { constrains: true, alwaysTrue };
  return {
    constrains: false,
    alwaysTrue,
    reason:
      fault === node
        ? `${render(node)} does not compare ${compare.key} with current_setting('${compare.setting}')`
        : `${render(fault)} admits rows without comparing ${compare.key} with current_setting('${compare.setting}')`,
  };
}

/** A check constraint's definition (`CHECK ((organization_id IS NOT NULL))`, perhaps ` NOT VALID`) that makes `column` NOT NULL. */
export function isNotNullCheck(definition: string, column: string): boolean {
  const body = /^\s*CHECK\s*([\s\S]*?)(\s+NOT\s+VALID)?\s*$/i.exec(definition)?.[1];
  if (!body) return false;
  loadedParser(); // a parser not loaded is a bug, never a definition that does not parse
  let node: Node;
  try {
    node = parseExpression(body);
  } catch {
    return false;
  }
  return conjuncts(node).some((c) => {
    const test = c['NullTest'] as { arg: Node; nulltesttype: string } | undefined;
    return test?.nulltesttype === 'IS_NOT_NULL' && columnName(test.arg) === column;
  });
}

// ---------------------------------------------------------------------------------------

/** The part of `node` that lets rows of another tenant through, or null when every row is constrained. */
function unconstrainedPart(node: Node, compare: KeyComparison): Node | null {
  const bool = node['BoolExpr'] as { boolop: string; args: Node[] } | undefined;
  if (bool?.boolop === 'AND_EXPR') return bool.args.some((arg) => unconstrainedPart(arg, compare) === null) ? null : node;
  if (bool?.boolop === 'OR_EXPR') {
    for (const arg of bool.args) {
      const part = unconstrainedPart(arg, compare);
      if (part !== null) return part;
    }
    return null;
  }
  return comparesKeyWithSetting(node, compare) ? null : node;
}

function comparesKeyWithSetting(node: Node, compare: KeyComparison): boolean {
  const expr = node['A_Expr'] as { kind: string; name: Node[]; lexpr: Node; rexpr: Node } | undefined;
  if (!expr || expr.kind !== 'AEXPR_OP' || operator(expr) !== '=') return false;
  const [l, r] = [expr.lexpr, expr.rexpr];
  return (
    (columnName(l) === compare.key && readsSetting(r, compare.setting)) ||
    (columnName(r) === compare.key && readsSetting(l, compare.setting))
  );
}

function operator(expr: { name: Node[] }): string | undefined {
  const last = expr.name[expr.name.length - 1] as { String?: { sval: string } } | undefined;
  return last?.String?.sval;
}

function uncast(node: Node): Node {
  let n = node;
  while (n['TypeCast']) n = (n['TypeCast'] as { arg: Node }).arg;
  return n;
}

/** The column a (possibly cast, possibly table-qualified) column reference names. */
function columnName(node: Node): string | undefined {
  const ref = uncast(node)['ColumnRef'] as { fields: Node[] } | undefined;
  const last = ref?.fields[ref.fields.length - 1] as { String?: { sval: string } } | undefined;
  return last?.String?.sval;
}

/** `current_setting('<setting>'[, missing_ok])`, perhaps cast, perhaps in a scalar sub-select. */
function readsSetting(node: Node, setting: string): boolean {
  const n = uncast(node);
  const sub = n['SubLink'] as { subLinkType: string; subselect: Node } | undefined;
  if (sub?.subLinkType === 'EXPR_SUBLINK') {
    const select = sub.subselect['SelectStmt'] as
      { targetList?: { ResTarget: { val: Node } }[]; fromClause?: unknown[]; whereClause?: unknown } | undefined;
    const only =
      select?.targetList?.length === 1 && !select.fromClause && !select.whereClause ? select.targetList[0]?.ResTarget.val : undefined;
    return only ? readsSetting(only, setting) : false;
  }
  // NULLIF(current_setting(s, true), '') and COALESCE(current_setting(s, true), '<constant>'):
  // the setting, with unset or empty mapped to NULL or to a fixed value, still names one tenant.
  const nullif = n['A_Expr'] as { kind: string; lexpr: Node; rexpr: Node } | undefined;
  if (nullif?.kind === 'AEXPR_NULLIF') return readsSetting(nullif.lexpr, setting) && evaluate(nullif.rexpr) !== undefined;
  const coalesce = n['CoalesceExpr'] as { args: Node[] } | undefined;
  if (coalesce)
    return (
      coalesce.args.length > 0 &&
      readsSetting(coalesce.args[0] as Node, setting) &&
      coalesce.args.slice(1).every((a) => evaluate(a) !== undefined)
    );
  const call = n['FuncCall'] as { funcname: Node[]; args?: Node[] } | undefined;
  if (!call) return false;
  const names = call.funcname.map((f) => (f as { String?: { sval: string } }).String?.sval);
  const fn = names.join('.');
  if (fn !== 'current_setting' && fn !== 'pg_catalog.current_setting') return false;
  const first = call.args?.[0];
  const value = first ? constant(uncast(first)) : undefined;
  return typeof value === 'string' && value.toLowerCase() === setting.toLowerCase();
}

function conjuncts(node: Node): Node[] {
  const bool = node['BoolExpr'] as { boolop: string; args: Node[] } | undefined;
  return bool?.boolop === 'AND_EXPR' ? bool.args.flatMap(conjuncts) : [node];
}

type Value = boolean | number | string | null | undefined; // undefined: not a constant

function constant(node: Node): Value {
  const c = node['A_Const'] as Record<string, unknown> | undefined;
  if (!c) return undefined;
  if (c['isnull']) return null;
  if ('boolval' in c) return Boolean((c['boolval'] as { boolval?: boolean }).boolval);
  if ('ival' in c) return (c['ival'] as { ival?: number }).ival ?? 0;
  if ('fval' in c) return Number((c['fval'] as { fval: string }).fval);
  if ('sval' in c) return (c['sval'] as { sval?: string }).sval ?? '';
  return undefined;
}

const truthy = new Set(['t', 'true', 'y', 'yes', 'on', '1']);
const falsy = new Set(['f', 'false', 'n', 'no', 'off', '0']);

/** The constant value of an expression, or undefined when it depends on anything (a column, a function, a setting). */
function evaluate(node: Node): Value {
  const c = constant(node);
  if (c !== undefined) return c;
  const cast = node['TypeCast'] as { arg: Node; typeName: { names: Node[] } } | undefined;
  if (cast) {
    const value = evaluate(cast.arg);
    const type = (cast.typeName.names[cast.typeName.names.length - 1] as { String?: { sval: string } }).String?.sval;
    if (type === 'bool' || type === 'boolean') {
      if (typeof value === 'string')
        return truthy.has(value.trim().toLowerCase()) ? true : falsy.has(value.trim().toLowerCase()) ? false : undefined;
      if (typeof value === 'number') return value !== 0;
    }
    return value;
  }
  const bool = node['BoolExpr'] as { boolop: string; args: Node[] } | undefined;
  if (bool) {
    const values = bool.args.map(evaluate);
    if (bool.boolop === 'NOT_EXPR') return typeof values[0] === 'boolean' ? !values[0] : values[0] === null ? null : undefined;
    if (bool.boolop === 'OR_EXPR') return values.includes(true) ? true : values.every((v) => v === false) ? false : undefined;
    if (bool.boolop === 'AND_EXPR') return values.includes(false) ? false : values.every((v) => v === true) ? true : undefined;
  }
  const test = node['NullTest'] as { arg: Node; nulltesttype: string } | undefined;
  if (test) {
    const value = evaluate(test.arg);
    if (value === undefined) return undefined;
    return test.nulltesttype === 'IS_NULL' ? value === null : value !== null;
  }
  const expr = node['A_Expr'] as { kind: string; name: Node[]; lexpr: Node; rexpr: Node } | undefined;
  if (expr?.kind === 'AEXPR_OP') {
    const op = operator(expr);
    // `x = x` of one column admits every row whose column is not NULL: as good as true for isolation.
    const [lc, rc] = [columnName(expr.lexpr), columnName(expr.rexpr)];
    if (lc !== undefined && lc === rc && (op === '=' || op === '>=' || op === '<=')) return true;
    const [l, r] = [evaluate(expr.lexpr), evaluate(expr.rexpr)];
    if (l === undefined || r === undefined) return undefined;
    if (l === null || r === null) return null;
    const a = typeof l === 'boolean' ? Number(l) : l;
    const b = typeof r === 'boolean' ? Number(r) : r;
    switch (op) {
      case '=':
        return a === b;
      case '<>':
      case '!=':
        return a !== b;
      case '<':
        return a < b;
      case '<=':
        return a <= b;
      case '>':
        return a > b;
      case '>=':
        return a >= b;
      default:
        return undefined;
    }
  }
  return undefined;
}

/** A short SQL rendering of an expression for messages (the forms policies use; `…` for the rest). */
export function render(node: Node): string {
  const c = constant(node);
  if (c !== undefined) return c === null ? 'NULL' : typeof c === 'string' ? `'${c.replace(/'/g, "''")}'` : String(c);
  if (node['ColumnRef']) {
    return (node['ColumnRef'] as { fields: Node[] }).fields.map((f) => (f as { String?: { sval: string } }).String?.sval ?? '*').join('.');
  }
  const cast = node['TypeCast'] as { arg: Node; typeName: { names: Node[] } } | undefined;
  if (cast) {
    const names = cast.typeName.names.map((n) => (n as { String?: { sval: string } }).String?.sval).filter((n) => n !== 'pg_catalog');
    return `${render(cast.arg)}::${names.join('.')}`;
  }
  const call = node['FuncCall'] as { funcname: Node[]; args?: Node[] } | undefined;
  if (call)
    return `${call.funcname.map((f) => (f as { String?: { sval: string } }).String?.sval).join('.')}(${(call.args ?? []).map(render).join(', ')})`;
  const test = node['NullTest'] as { arg: Node; nulltesttype: string } | undefined;
  if (test) return `${render(test.arg)} ${test.nulltesttype === 'IS_NULL' ? 'IS NULL' : 'IS NOT NULL'}`;
  const expr = node['A_Expr'] as { kind: string; name: Node[]; lexpr?: Node; rexpr?: Node } | undefined;
  if (expr?.kind === 'AEXPR_NULLIF') return `NULLIF(${render(expr.lexpr ?? {})}, ${render(expr.rexpr ?? {})})`;
  if (node['CoalesceExpr']) return `COALESCE(${(node['CoalesceExpr'] as { args: Node[] }).args.map(render).join(', ')})`;
  if (expr?.kind === 'AEXPR_OP')
    return `${expr.lexpr ? `${render(expr.lexpr)} ` : ''}${operator(expr) ?? '?'} ${expr.rexpr ? render(expr.rexpr) : ''}`;
  const bool = node['BoolExpr'] as { boolop: string; args: Node[] } | undefined;
  if (bool) {
    if (bool.boolop === 'NOT_EXPR') return `NOT ${paren(bool.args[0] ?? {})}`;
    return bool.args.map(paren).join(bool.boolop === 'AND_EXPR' ? ' AND ' : ' OR ');
  }
  if (node['SubLink']) return '(SELECT …)';
  return '…';
}

function paren(node: Node): string {
  return node['BoolExpr'] ? `(${render(node)})` : render(node);
}

// ---------------------------------------------------------------------------------------
// One policy
// ---------------------------------------------------------------------------------------

export interface PolicyText {
  command: 'all' | 'select' | 'insert' | 'update' | 'delete';
  permissive: boolean;
  using: string | null;
  withCheck: string | null;
}

/** What is wrong with one policy, each fault with the reason to show (none: it isolates). */
export interface PolicyFaults {
  /** Its USING admits rows without comparing the key with the setting (an OR branch, an unrelated test). */
  ignoresKey?: string;
  /** Its USING admits every row. */
  alwaysTrue?: string;
  /** A write it covers is let through without its row being held to the tenant. */
  writesThrough?: string;
}

/**
 * A restrictive policy only narrows what permissive ones admit, so only permissive policies
 * are judged. USING is what reads (and the rows an UPDATE or DELETE may touch) see; the
 * rows a write produces are held by WITH CHECK, or by USING when an ALL or UPDATE policy
 * has none; an INSERT policy has nothing but WITH CHECK.
 */
export function judgePolicy(policy: PolicyText, compare: KeyComparison): PolicyFaults {
  const faults: PolicyFaults = {};
  if (!policy.permissive) return faults;
  if (policy.using !== null) {
    const using = judgeExpression(policy.using, compare);
    if (using.alwaysTrue) faults.alwaysTrue = `USING (${policy.using}) admits every row`;
    else if (!using.constrains) faults.ignoresKey = `USING: ${using.reason ?? ''}`;
  }
  const writes = policy.command === 'all' || policy.command === 'insert' || policy.command === 'update';
  if (!writes) return faults;
  if (policy.withCheck !== null) {
    const check = judgeExpression(policy.withCheck, compare);
    if (check.alwaysTrue) faults.writesThrough = `WITH CHECK (${policy.withCheck}) admits any row`;
    else if (!check.constrains) faults.writesThrough = `WITH CHECK: ${check.reason ?? ''}`;
  } else if (policy.command === 'insert') {
    faults.writesThrough = 'an INSERT policy without WITH CHECK admits any new row';
  } else if (policy.using === null || faults.alwaysTrue || faults.ignoresKey) {
    faults.writesThrough = `no WITH CHECK, and USING does not hold new rows to the tenant: a write may give a row another tenant's key`;
  }
  return faults;
}
