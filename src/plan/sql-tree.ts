/**
 * What a statement does, read from its libpg-query parse tree: the parameters it uses, the
 * existing tables whose rows or columns it changes or loses, whether it runs only outside a
 * transaction block, ends the transaction or releases the run's lock, and the index it
 * creates. Pure: trees in, facts out (the split cache keeps the facts with each statement).
 */
import { quoteIdent } from '../tenancy/sql-text.js';

/** This module's URL: the split cache keeps what it computes, so its code is part of the cache's build (sql-split.ts). */
export const analysisCode = import.meta.url;

export interface Analysis {
  params: number[];
  writes: string[];
  isQuery: boolean;
  mustRunAlone: boolean;
  isTransactionControl: boolean;
  /** DISCARD ALL, or a call of pg_advisory_unlock_all(): the session's advisory locks go. */
  releasesRunLock: boolean;
  createsIndex: { schema: string | undefined; name: string } | undefined;
}

interface RangeVar {
  schemaname?: string;
  relname: string;
}

/**
 * The table as SQL text, each part quoted where PostgreSQL needs it: the parse tree holds the
 * names as stored (`UPDATE "Order"` gives `Order`), and to_regclass() or pg_dump must find that
 * table, not `order`.
 */
const qualified = (r: RangeVar): string => (r.schemaname ? `${quoteIdent(r.schemaname)}.${quoteIdent(r.relname)}` : quoteIdent(r.relname));

/**
 * What the parse tree tells: parameters used, the existing tables whose rows or columns a
 * statement changes or loses (what a rollback file cannot give back, so what the snapshot
 * holds), and statements that cannot run in a transaction.
 */
export function analyse(stmt: Record<string, unknown>): Analysis {
  const [type] = Object.keys(stmt);
  const node = (type ? stmt[type] : {}) as Record<string, unknown>;
  const params = new Set<number>();
  const writes: string[] = [];
  let releasesRunLock = type === 'DiscardStmt' && (node as { target?: string }).target === 'DISCARD_ALL';
  walk(stmt, (key, value) => {
    if (key === 'ParamRef') params.add(Number((value as { number?: number }).number ?? 0));
    if (key === 'FuncCall') {
      const name = (value as { funcname?: { String?: { sval?: string } }[] }).funcname?.at(-1)?.String?.sval;
      if (name?.toLowerCase() === 'pg_advisory_unlock_all') releasesRunLock = true;
    }
    if (changesExistingRows(key, value) || changesExistingColumns(key, value)) {
      const relation = (value as { relation?: RangeVar }).relation;
      if (relation) writes.push(qualified(relation));
    }
    if (key === 'TruncateStmt') {
      for (const r of (value as { relations?: { RangeVar: RangeVar }[] }).relations ?? []) writes.push(qualified(r.RangeVar));
    }
    if (key === 'DropStmt' && (value as { removeType?: string }).removeType === 'OBJECT_TABLE') {
      for (const name of (value as { objects?: { List?: { items?: { String?: { sval?: string } }[] } }[] }).objects ?? []) {
        writes.push((name.List?.items ?? []).map((part) => quoteIdent(part.String?.sval ?? '')).join('.'));
      }
    }
  });
  const index = type === 'IndexStmt' ? (node as { idxname?: string; concurrent?: boolean; relation?: RangeVar }) : undefined;
  const mustRunAlone =
    Boolean(index?.concurrent) ||
    (type === 'DropStmt' && Boolean((node as { concurrent?: boolean }).concurrent)) ||
    (type === 'ReindexStmt' && JSON.stringify(node).includes('"concurrently"')) ||
    // VACUUM cannot run in a transaction block; ANALYZE (the same node, is_vacuumcmd false) can.
    (type === 'VacuumStmt' && Boolean((node as { is_vacuumcmd?: boolean }).is_vacuumcmd)) ||
    type === 'CreatedbStmt' ||
    type === 'DropdbStmt';
  return {
    params: [...params],
    writes,
    isQuery: type === 'SelectStmt',
    mustRunAlone,
    isTransactionControl: type === 'TransactionStmt',
    releasesRunLock,
    createsIndex: index?.idxname ? { schema: index.relation?.schemaname, name: index.idxname } : undefined,
  };
}

/**
 * UPDATE, DELETE, MERGE and an upsert change rows that exist. A plain INSERT only adds rows,
 * which a rollback file deletes again: no snapshot for it.
 */
function changesExistingRows(key: string, value: unknown): boolean {
  if (key === 'UpdateStmt' || key === 'DeleteStmt' || key === 'MergeStmt') return true;
  return key === 'InsertStmt' && (value as { onConflictClause?: { action?: string } }).onConflictClause?.action === 'ONCONFLICT_UPDATE';
}

/**
 * An ALTER TABLE that drops a column or changes its type loses or rewrites data. Adding a
 * column, a constraint, a default, NOT NULL or row level security changes only the catalog,
 * and the rollback file reverts it: a pg_dump of the whole table would buy nothing.
 */
function changesExistingColumns(key: string, value: unknown): boolean {
  if (key !== 'AlterTableStmt') return false;
  const cmds = (value as { cmds?: { AlterTableCmd?: { subtype?: string } }[] }).cmds ?? [];
  return cmds.some((c) => c.AlterTableCmd?.subtype === 'AT_DropColumn' || c.AlterTableCmd?.subtype === 'AT_AlterColumnType');
}

function walk(value: unknown, visit: (key: string, value: unknown) => void): void {
  if (Array.isArray(value)) {
    for (const item of value) walk(item, visit);
  } else if (value && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      visit(key, child);
      walk(child, visit);
    }
  }
}
