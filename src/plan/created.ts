/**
 * The relations a unit created, read from its statements' parse trees: a snapshot restores
 * the tables a unit wrote as they were, but knows nothing of the tables, views, sequences
 * and indexes the unit added, so `rollback --from-snapshot` drops those itself. A
 * `CREATE ... IF NOT EXISTS` may have found the relation there already: it is left alone.
 */
import { runtimeImport } from '../runtime-import.js';
import { quoteIdent } from '../tenancy/sql-text.js';
import type { Unit } from './types.js';

export interface CreatedRelation {
  kind: 'TABLE' | 'VIEW' | 'MATERIALIZED VIEW' | 'SEQUENCE' | 'INDEX';
  /** As SQL text, quoted. */
  name: string;
}

interface RangeVar {
  schemaname?: string;
  relname?: string;
}

type ParseSync = (sql: string) => { stmts?: { stmt: Record<string, unknown> }[] };

/** What the unit's statements create, in the order they create it. */
export async function createdRelations(unit: Unit): Promise<CreatedRelation[]> {
  if (unit.statements.length === 0) return [];
  const mod = await runtimeImport('libpg-query', () => import('libpg-query'));
  await mod.loadModule();
  const parse = mod.parseSync as ParseSync;
  const created: CreatedRelation[] = [];
  for (const statement of unit.statements) {
    for (const { stmt } of parse(statement.sql).stmts ?? []) {
      const relation = createdBy(stmt);
      if (relation) created.push(relation);
    }
  }
  return created;
}

/** The relation one parsed statement creates, if it creates one (and not IF NOT EXISTS). */
export function createdBy(stmt: Record<string, unknown>): CreatedRelation | undefined {
  const [type] = Object.keys(stmt);
  const node = (type ? stmt[type] : {}) as Record<string, unknown> & { if_not_exists?: boolean };
  if (node.if_not_exists) return undefined;
  const named = (kind: CreatedRelation['kind'], r: RangeVar | undefined): CreatedRelation | undefined =>
    r?.relname ? { kind, name: r.schemaname ? `${quoteIdent(r.schemaname)}.${quoteIdent(r.relname)}` : quoteIdent(r.relname) } : undefined;
  switch (type) {
    case 'CreateStmt':
      return named('TABLE', node['relation'] as RangeVar);
    case 'CreateTableAsStmt': {
      const into = node['into'] as { rel?: RangeVar } | undefined;
      return named(node['objtype'] === 'OBJECT_MATVIEW' ? 'MATERIALIZED VIEW' : 'TABLE', into?.rel);
    }
    case 'ViewStmt':
      // CREATE OR REPLACE VIEW may have replaced one that was there: left alone.
      return node['replace'] ? undefined : named('VIEW', node['view'] as RangeVar);
    case 'CreateSeqStmt':
      return named('SEQUENCE', node['sequence'] as RangeVar);
    case 'IndexStmt': {
      const idxname = node['idxname'] as string | undefined;
      const relation = node['relation'] as RangeVar | undefined;
      return idxname
        ? named('INDEX', { relname: idxname, ...(relation?.schemaname ? { schemaname: relation.schemaname } : {}) })
        : undefined;
    }
    default:
      return undefined;
  }
}

/**
 * The statements that drop them, newest first (a view before the table it reads): the views
 * (dropped before a restore, which recreates the views reading the restored tables), and the rest.
 */
export function dropStatements(created: CreatedRelation[]): { views: string[]; rest: string[] } {
  const newestFirst = [...created].reverse();
  const drop = (r: CreatedRelation): string => `DROP ${r.kind} IF EXISTS ${r.name}`;
  const isView = (r: CreatedRelation): boolean => r.kind === 'VIEW' || r.kind === 'MATERIALIZED VIEW';
  return { views: newestFirst.filter(isView).map(drop), rest: newestFirst.filter((r) => !isView(r)).map(drop) };
}
