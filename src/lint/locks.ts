/**
 * The table locks a statement takes, read from its parse tree (pure). Only the modes that
 * make other sessions wait matter here: SHARE and stronger block writes, ACCESS EXCLUSIVE
 * blocks reads too. While such a statement waits for its lock, every later query on the
 * table queues behind it, which is why it wants a lock timeout.
 */
import { writtenPart } from '../tenancy/sql-text.js';

export type StrongLockMode = 'SHARE' | 'SHARE ROW EXCLUSIVE' | 'EXCLUSIVE' | 'ACCESS EXCLUSIVE';

export interface StrongLock {
  mode: StrongLockMode;
  /** The tables locked (as written in the statement). */
  tables: string[];
  /** What takes the lock, for the message: "ALTER TABLE", "CREATE INDEX"... */
  what: string;
}

interface RangeVar {
  schemaname?: string;
  relname?: string;
}
type Node = Record<string, unknown>;

/**
 * A table as the statement names it, each part as stored and quoted only when it holds a dot
 * or a quote (`"my.schema".t`, not `my.schema.t`): what parseQualifiedName reads back.
 */
export const qualifiedName = (r: RangeVar | undefined): string =>
  r?.schemaname ? `${writtenPart(r.schemaname)}.${writtenPart(r.relname ?? '')}` : r?.relname ? writtenPart(r.relname) : '';

const lockModes: Record<number, StrongLockMode> = { 5: 'SHARE', 6: 'SHARE ROW EXCLUSIVE', 7: 'EXCLUSIVE', 8: 'ACCESS EXCLUSIVE' };
const droppedRelations = new Set([
  'OBJECT_TABLE',
  'OBJECT_INDEX',
  'OBJECT_VIEW',
  'OBJECT_MATVIEW',
  'OBJECT_FOREIGN_TABLE',
  'OBJECT_TRIGGER',
  'OBJECT_RULE',
  'OBJECT_POLICY',
]);
/** ALTER TABLE subcommands that take SHARE UPDATE EXCLUSIVE only (reads and writes go on). */
const mildAlterations = new Set([
  'AT_ValidateConstraint',
  'AT_SetStatistics',
  'AT_SetOptions',
  'AT_ResetOptions',
  'AT_SetRelOptions',
  'AT_ResetRelOptions',
  'AT_ClusterOn',
  'AT_DropCluster',
]);

function hasOption(list: unknown, name: string): boolean {
  return Array.isArray(list) && list.some((o) => (o as { DefElem?: { defname?: string } }).DefElem?.defname === name);
}

function foreignKeyTargets(constraints: unknown): string[] {
  if (!Array.isArray(constraints)) return [];
  return constraints
    .map((c) => (c as { Constraint?: { contype?: string; pktable?: RangeVar } } | undefined)?.Constraint)
    .filter((c) => c?.contype === 'CONSTR_FOREIGN' && c.pktable)
    .map((c) => qualifiedName(c?.pktable));
}

/** The strong lock a statement takes, or undefined when it takes none (or only weak ones). */
export function strongLockOf(stmt: Node): StrongLock | undefined {
  const [type] = Object.keys(stmt);
  const node = (type ? stmt[type] : {}) as Node;
  switch (type) {
    case 'AlterTableStmt': {
      const cmds = ((node['cmds'] as { AlterTableCmd?: Node }[] | undefined) ?? []).map((c) => c.AlterTableCmd ?? {});
      const table = qualifiedName(node['relation'] as RangeVar);
      if (cmds.length > 0 && cmds.every((c) => mildAlterations.has(String(c['subtype'])))) return undefined;
      const onlyForeignKeys =
        cmds.length > 0 && cmds.every((c) => c['subtype'] === 'AT_AddConstraint' && foreignKeyTargets([c['def']]).length > 0);
      const referenced = cmds.flatMap((c) => foreignKeyTargets([c['def']]));
      const kind = node['objtype'] === 'OBJECT_INDEX' ? 'ALTER INDEX' : node['objtype'] === 'OBJECT_TABLE' ? 'ALTER TABLE' : 'ALTER';
      return { mode: onlyForeignKeys ? 'SHARE ROW EXCLUSIVE' : 'ACCESS EXCLUSIVE', tables: [table, ...referenced], what: kind };
    }
    case 'IndexStmt':
      return node['concurrent']
        ? undefined
        : { mode: 'SHARE', tables: [qualifiedName(node['relation'] as RangeVar)], what: 'CREATE INDEX' };
    case 'DropStmt': {
      const removeType = String(node['removeType']);
      if (node['concurrent'] || !droppedRelations.has(removeType)) return undefined;
      const names = ((node['objects'] as { List?: { items?: { String?: { sval?: string } }[] } }[] | undefined) ?? []).map((o) =>
        (o.List?.items ?? []).map((i) => i.String?.sval ?? '').join('.'),
      );
      return { mode: 'ACCESS EXCLUSIVE', tables: names, what: `DROP ${removeType.replace('OBJECT_', '').replace('_', ' ')}` };
    }
    case 'TruncateStmt':
      return {
        mode: 'ACCESS EXCLUSIVE',
        tables: ((node['relations'] as { RangeVar: RangeVar }[] | undefined) ?? []).map((r) => qualifiedName(r.RangeVar)),
        what: 'TRUNCATE',
      };
    case 'VacuumStmt':
      if (!hasOption(node['options'], 'full')) return undefined;
      return {
        mode: 'ACCESS EXCLUSIVE',
        tables: ((node['rels'] as { VacuumRelation?: { relation?: RangeVar } }[] | undefined) ?? []).map((r) =>
          qualifiedName(r.VacuumRelation?.relation),
        ),
        what: 'VACUUM FULL',
      };
    case 'ReindexStmt':
      return hasOption(node['params'], 'concurrently')
        ? undefined
        : { mode: 'SHARE', tables: [qualifiedName(node['relation'] as RangeVar) || String(node['name'] ?? '')], what: 'REINDEX' };
    case 'ClusterStmt':
      return { mode: 'ACCESS EXCLUSIVE', tables: [qualifiedName(node['relation'] as RangeVar)], what: 'CLUSTER' };
    case 'RefreshMatViewStmt':
      return node['concurrent']
        ? undefined
        : { mode: 'ACCESS EXCLUSIVE', tables: [qualifiedName(node['relation'] as RangeVar)], what: 'REFRESH MATERIALIZED VIEW' };
    case 'LockStmt': {
      const mode = lockModes[Number(node['mode'])];
      return mode
        ? {
            mode,
            tables: ((node['relations'] as { RangeVar: RangeVar }[] | undefined) ?? []).map((r) => qualifiedName(r.RangeVar)),
            what: 'LOCK TABLE',
          }
        : undefined;
    }
    case 'CreateTrigStmt':
      return { mode: 'SHARE ROW EXCLUSIVE', tables: [qualifiedName(node['relation'] as RangeVar)], what: 'CREATE TRIGGER' };
    case 'RenameStmt':
      return node['relation']
        ? { mode: 'ACCESS EXCLUSIVE', tables: [qualifiedName(node['relation'] as RangeVar)], what: 'RENAME' }
        : undefined;
    case 'CreateStmt': {
      // A new table referencing an existing one locks the referenced table (SHARE ROW EXCLUSIVE).
      const own = qualifiedName(node['relation'] as RangeVar);
      const elements = (node['tableElts'] as Node[] | undefined) ?? [];
      const referenced = elements
        .flatMap((e) => [
          ...foreignKeyTargets((e['ColumnDef'] as { constraints?: unknown } | undefined)?.constraints),
          ...foreignKeyTargets(e['Constraint'] ? [e] : []),
        ])
        .filter((t) => t !== own);
      return referenced.length > 0
        ? { mode: 'SHARE ROW EXCLUSIVE', tables: [...new Set(referenced)], what: 'CREATE TABLE ... REFERENCES' }
        : undefined;
    }
    default:
      return undefined;
  }
}

/** CREATE TABLE: the table's name, so later statements of the unit on it lock nobody out. */
export function createdTable(stmt: Node): string | undefined {
  const create = stmt['CreateStmt'] as { relation?: RangeVar } | undefined;
  return create ? qualifiedName(create.relation) : undefined;
}

/** `SET [LOCAL] lock_timeout = ...` in the unit: the value in milliseconds (0 = none), else undefined. */
export function lockTimeoutSet(stmt: Node): number | undefined {
  const set = stmt['VariableSetStmt'] as
    { name?: string; kind?: string; args?: { A_Const?: { sval?: { sval?: string }; ival?: { ival?: number } } }[] } | undefined;
  if (!set || set.name !== 'lock_timeout') return undefined;
  if (set.kind !== 'VAR_SET_VALUE') return 0;
  const value = set.args?.[0]?.A_Const;
  if (value?.sval?.sval !== undefined) {
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|min|h)?$/.exec(value.sval.sval.trim());
    if (!match) return 1; // a value PostgreSQL will judge; some timeout is set
    return Number(match[1]) * { ms: 1, s: 1000, min: 60_000, h: 3_600_000 }[(match[2] ?? 'ms') as 'ms'];
  }
  return value?.ival?.ival ?? 0;
}

/** UPDATE or DELETE: the table it writes, for unbatched-update-large-table. */
export function rowWriteOf(stmt: Node): { verb: 'UPDATE' | 'DELETE'; table: string } | undefined {
  const update = stmt['UpdateStmt'] as { relation?: RangeVar } | undefined;
  if (update) return { verb: 'UPDATE', table: qualifiedName(update.relation) };
  const del = stmt['DeleteStmt'] as { relation?: RangeVar } | undefined;
  if (del) return { verb: 'DELETE', table: qualifiedName(del.relation) };
  return undefined;
}

/**
 * What an ALTER TABLE does to a column's NOT NULL and the checks that prove it, in order:
 * SET NOT NULL is safe (no scan, PostgreSQL 12+) once a validated `CHECK (column IS NOT
 * NULL)` is on the table.
 */
export type NotNullStep =
  | { op: 'add-check'; table: string; name: string; column: string; valid: boolean }
  | { op: 'validate'; table: string; name: string }
  | { op: 'drop-constraint'; table: string; name: string }
  | { op: 'set-not-null'; table: string; column: string };

export function notNullSteps(stmt: Node): NotNullStep[] {
  const alter = stmt['AlterTableStmt'] as Node | undefined;
  if (!alter) return [];
  const table = qualifiedName(alter['relation'] as RangeVar);
  const steps: NotNullStep[] = [];
  for (const { AlterTableCmd: cmd } of (alter['cmds'] as { AlterTableCmd?: Node }[] | undefined) ?? []) {
    const name = String(cmd?.['name'] ?? '');
    switch (cmd?.['subtype']) {
      case 'AT_AddConstraint': {
        const c = (
          cmd['def'] as { Constraint?: { contype?: string; conname?: string; skip_validation?: boolean; raw_expr?: Node } } | undefined
        )?.Constraint;
        const test = c?.raw_expr?.['NullTest'] as
          { arg?: { ColumnRef?: { fields?: { String?: { sval?: string } }[] } }; nulltesttype?: string } | undefined;
        const fields = test?.arg?.ColumnRef?.fields ?? [];
        const column = fields.length === 1 ? fields[0]?.String?.sval : undefined;
        if (c?.contype === 'CONSTR_CHECK' && c.conname && test?.nulltesttype === 'IS_NOT_NULL' && column)
          steps.push({ op: 'add-check', table, name: c.conname, column, valid: !c.skip_validation });
        break;
      }
      case 'AT_ValidateConstraint':
        steps.push({ op: 'validate', table, name });
        break;
      case 'AT_DropConstraint':
        steps.push({ op: 'drop-constraint', table, name });
        break;
      case 'AT_SetNotNull':
        steps.push({ op: 'set-not-null', table, column: name });
        break;
    }
  }
  return steps;
}

/** What the rules need to know of a statement: small, so it is kept in the split cache. */
export interface StatementFacts {
  lock?: StrongLock;
  created?: string;
  lockTimeoutMs?: number;
  rowWrite?: { verb: 'UPDATE' | 'DELETE'; table: string };
  notNull?: NotNullStep[];
}

export function statementFacts(stmt: Node): StatementFacts {
  const lock = strongLockOf(stmt);
  const created = createdTable(stmt);
  const lockTimeoutMs = lockTimeoutSet(stmt);
  const rowWrite = rowWriteOf(stmt);
  const notNull = notNullSteps(stmt);
  return {
    ...(lock ? { lock } : {}),
    ...(created ? { created } : {}),
    ...(lockTimeoutMs !== undefined ? { lockTimeoutMs } : {}),
    ...(rowWrite ? { rowWrite } : {}),
    ...(notNull.length > 0 ? { notNull } : {}),
  };
}

/** This module's URL: the facts cached by lint change with it. */
export const factsCode = import.meta.url;
