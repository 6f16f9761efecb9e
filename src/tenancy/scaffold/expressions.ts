/**
 * SQL expressions along derivation paths. Two families:
 *
 * - before the key exists (prechecks, policies): the owner row a row reaches, found by
 *   joining every hop of its path to the owner (`ownerOf`);
 * - once parents have their key (triggers, backfills, verifies): the key of the row's
 *   parent along each first hop, first that resolves (`keyFromParents`).
 */
import type { ConsistencyEdge, Hop } from '../types.js';
import { q, qt, type KeyedTable, type ScaffoldModel } from './model.js';

/** Fresh aliases within one query, so nested subqueries never shadow each other. */
export class Aliases {
  private n = 0;
  next(prefix = 'p'): string {
    this.n += 1;
    return `${prefix}${this.n}`;
  }
}

/** `a.x = b.y AND ...` for a hop's columns. */
export function joinOn(childAlias: string, hop: Hop, parentAlias: string): string {
  return hop.columns.map((c, i) => `${parentAlias}.${q(hop.referencedColumns[i] as string)} = ${childAlias}.${q(c)}`).join(' AND ');
}

/** The owner's id reached from `alias` (a row of the path's first table) along `path`, or NULL. */
export function ownerAlong(m: ScaffoldModel, alias: string, path: Hop[], names: Aliases): string {
  const parts: string[] = [];
  let previous = alias;
  let first = '';
  let last = '';
  path.forEach((hop, i) => {
    const a = names.next();
    if (i === 0) {
      first = `${qt(hop.references)} AS ${a}`;
      parts.push(joinOn(previous, hop, a));
    } else {
      first += ` JOIN ${qt(hop.references)} AS ${a} ON ${joinOn(previous, hop, a)}`;
    }
    previous = a;
    last = a;
  });
  return `(SELECT ${last}.${q(m.ownerPk)} FROM ${first} WHERE ${parts.join(' AND ')})`;
}

/** The owner's id of a row of `table` (alias), along its derivation then its fallbacks. */
export function ownerOf(m: ScaffoldModel, table: KeyedTable, alias: string, names: Aliases): string {
  if (table.isOwner) return `${alias}.${q(m.ownerPk)}`;
  const paths = [table.analysis.via, ...table.analysis.fallbacks].filter((p) => p.length > 0);
  const each = paths.map((p) => ownerAlong(m, alias, p, names));
  return each.length === 1 ? (each[0] as string) : `COALESCE(${each.join(', ')})`;
}

/** Rows of `table` (alias) no path resolves to an owner row. */
export function unresolvedPredicate(m: ScaffoldModel, table: KeyedTable, alias: string): string {
  return `${ownerOf(m, table, alias, new Aliases())} IS NULL`;
}

/** Rows of `table` (alias) whose edge lands in another owner than their derivation. */
export function conflictPredicate(m: ScaffoldModel, table: KeyedTable, edge: ConsistencyEdge, alias: string): string {
  const names = new Aliases();
  const mine = ownerOf(m, table, alias, names);
  const referenced = m.keyed_(edge.references);
  if (!referenced) return 'false';
  const r = names.next('r');
  const theirs = `(SELECT ${ownerOf(m, referenced, r, names)} FROM ${qt(edge.references)} AS ${r} WHERE ${edge.columns
    .map((c, i) => `${r}.${q(edge.referencedColumns[i] as string)} = ${alias}.${q(c)}`)
    .join(' AND ')})`;
  return `${mine} <> ${theirs}`;
}

/** The key of the parent along `hop` for a row `alias` (NEW in a trigger). */
export function parentKey(m: ScaffoldModel, hop: Hop, alias: string, parentAlias = 'p'): string {
  return `(SELECT ${parentAlias}.${q(m.keyColumnOf(hop.references))} FROM ${qt(hop.references)} AS ${parentAlias} WHERE ${joinOn(alias, hop, parentAlias)})`;
}

/** The key a row of `table` takes from its parents: COALESCE over the first hops of its paths. */
export function keyFromParents(m: ScaffoldModel, table: KeyedTable, alias: string, indent = '  '): string {
  const each = m.firstHops(table).map((h) => parentKey(m, h, alias));
  if (each.length === 1) return each[0] as string;
  return `COALESCE(\n${each.map((e) => `${indent}  ${e}`).join(',\n')})`;
}

/** `t.id` or `(t.a, t.b)`: the row's identity in listings. */
export function rowIdList(table: KeyedTable, alias: string): string {
  return table.rowId.map((c) => `${alias}.${q(c)}`).join(', ');
}
