/**
 * Prechecks and verifies as set-based queries: each path to the owner is a chain of LEFT
 * JOINs (hash or merge anti-joins for the planner, one pass over each table), where the
 * `expressions.ts` forms look the owner up row by row through correlated subqueries. Over a
 * million rows that difference is a second against minutes, and a check that runs for
 * minutes holds back VACUUM on every table the application writes.
 *
 * What a validated foreign key already proves is not checked again: a hop to the owner
 * whose constraint is validated has its owner row whenever its column is not NULL, so the
 * owner's id is that column and the owner table is not joined.
 */
import type { Hop } from '../types.js';
import { joinOn, rowIdList } from './expressions.js';
import { q, qt, type KeyedTable, type ScaffoldModel } from './model.js';

/** LEFT JOINs that reach the owner from `alias`, and the owner's id they give (NULL where a path does not resolve). */
export interface Joined {
  joins: string[];
  owner: string;
}

/** Fresh aliases for one query. */
export class JoinAliases {
  private n = 0;
  next(prefix = 'p'): string {
    this.n += 1;
    return `${prefix}${this.n}`;
  }
}

/** The hop's foreign key is validated, single-column and lands on the owner's primary key: its value is the owner's id. */
function provenOwner(m: ScaffoldModel, hop: Hop): boolean {
  if (hop.references !== m.analysis.owner || hop.columns.length !== 1 || hop.referencedColumns[0] !== m.ownerPk) return false;
  return m.table(hop.table).foreignKeys.some((fk) => fk.name === hop.constraint && fk.validated);
}

/** One path from `alias` to the owner as LEFT JOINs. */
function alongPath(m: ScaffoldModel, alias: string, path: Hop[], names: JoinAliases): Joined {
  const joins: string[] = [];
  let previous = alias;
  for (const [i, hop] of path.entries()) {
    if (i === path.length - 1 && provenOwner(m, hop)) return { joins, owner: `${previous}.${q(hop.columns[0] as string)}` };
    const a = names.next();
    joins.push(`LEFT JOIN ${qt(hop.references)} AS ${a} ON ${joinOn(previous, hop, a)}`);
    previous = a;
  }
  return { joins, owner: `${previous}.${q(m.ownerPk)}` };
}

/** The owner's id of a row of `table` (alias), along its derivation then its fallbacks (first that resolves). */
export function ownerJoined(m: ScaffoldModel, table: KeyedTable, alias: string, names: JoinAliases): Joined {
  if (table.isOwner) return { joins: [], owner: `${alias}.${q(m.ownerPk)}` };
  const paths = [table.analysis.via, ...table.analysis.fallbacks].filter((p) => p.length > 0);
  const each = paths.map((p) => alongPath(m, alias, p, names));
  const owner = each.length === 1 ? (each[0] as Joined).owner : `COALESCE(${each.map((e) => e.owner).join(', ')})`;
  return { joins: each.flatMap((e) => e.joins), owner };
}

/** `FROM table AS t` and its joins, one a line. */
function from(table: string, alias: string, joins: string[]): string {
  return [`  FROM ${qt(table)} AS ${alias}`, ...joins.map((j) => `  ${j}`)].join('\n');
}

/**
 * Rows of `t` no path leads to an owner row (the runner counts them all and shows the first).
 * `range`: a precheck in ranges' condition on the range's bounds, ending in `AND `.
 */
export function unresolvedQuery(m: ScaffoldModel, t: KeyedTable, range = ''): string {
  const { joins, owner } = ownerJoined(m, t, 't', new JoinAliases());
  return `SELECT ${rowIdList(t, 't')}\n${from(t.name, 't', joins)}\n WHERE ${range}${owner} IS NULL`;
}

/** Rows of `t` whose reference `columns` lands in another owner than their own, each column once. */
export function conflictQuery(
  m: ScaffoldModel,
  t: KeyedTable,
  edge: { columns: string[]; references: string; referencedColumns: string[] },
  range = '',
): string {
  const referenced = m.keyedTable(edge.references);
  const names = new JoinAliases();
  const mine = ownerJoined(m, t, 't', names);
  const r = names.next('r');
  const match = edge.columns.map((c, i) => `${r}.${q(edge.referencedColumns[i] as string)} = t.${q(c)}`).join(' AND ');
  const theirs = referenced ? ownerJoined(m, referenced, r, names) : { joins: [], owner: 'NULL' };
  const joins = [...mine.joins, `JOIN ${qt(edge.references)} AS ${r} ON ${match}`, ...theirs.joins];
  const columns = [...rowIdList(t, 't').split(', '), ...edge.columns.map((c) => `t.${q(c)}`)];
  return `SELECT ${[...new Set(columns)].join(', ')}\n${from(t.name, 't', joins)}\n WHERE ${range}${mine.owner} <> ${theirs.owner}`;
}

/**
 * Rows of `t` whose key is not their parents' (first that resolves), over LEFT JOINs to each
 * parent, or that `orAlso` finds (a row the backfill skipped).
 */
export function parentsKeyVerify(m: ScaffoldModel, t: KeyedTable, orAlso: string): string {
  const names = new JoinAliases();
  const parents = m.firstHops(t).map((hop) => {
    const a = names.next();
    return { join: `LEFT JOIN ${qt(hop.references)} AS ${a} ON ${joinOn('t', hop, a)}`, key: `${a}.${q(m.keyColumnOf(hop.references))}` };
  });
  const key = parents.length === 1 ? (parents[0]?.key as string) : `COALESCE(${parents.map((p) => p.key).join(', ')})`;
  return `SELECT ${rowIdList(t, 't')}\n${from(
    t.name,
    't',
    parents.map((p) => p.join),
  )}\n WHERE t.${q(t.keyColumn)} IS DISTINCT FROM ${key}\n    OR ${orAlso}`;
}
