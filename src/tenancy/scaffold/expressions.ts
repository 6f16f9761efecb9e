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

/**
 * Fresh aliases within one query, so nested subqueries never shadow each other, and the
 * tables the query's subqueries read.
 *
 * With `citusReads`, each subquery reads its table through a CTE of its own (`WITH r1 AS
 * (SELECT * FROM t)`), which `withReads` puts before the query. On plain PostgreSQL a CTE
 * read once is inlined: the query and its plan are those of the plain form. On a Citus
 * coordinator whose tables are distributed, a subquery correlated on a column other than the
 * distribution column is refused ("complex joins are only supported when ... joined on their
 * distribution columns"); Citus then plans each CTE on its own, as a query of one table, and
 * runs the rest over their results, so the same check runs there too.
 */
export class Aliases {
  private n = 0;
  private readonly reads: string[] = [];
  constructor(private readonly citusReads = false) {}
  next(prefix = 'p'): string {
    this.n += 1;
    return `${prefix}${this.n}`;
  }
  get throughCtes(): boolean {
    return this.citusReads;
  }
  /** How a subquery names `table`: the table itself, or its own CTE. */
  from(table: string): string {
    return this.citusReads ? this.read(`SELECT * FROM ${qt(table)}`) : qt(table);
  }
  /** A CTE of its own for `select` (which may read the CTEs made before it); its name. */
  read(select: string): string {
    const name = `read${this.reads.length + 1}`;
    this.reads.push(`${name} AS (${select})`);
    return name;
  }
  /** `sql` preceded by the CTEs its subqueries read, if any. */
  withReads(sql: string): string {
    return this.reads.length === 0 ? sql : `WITH ${this.reads.join(',\n     ')}\n${sql}`;
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
      first = `${names.from(hop.references)} AS ${a}`;
      parts.push(joinOn(previous, hop, a));
    } else {
      first += ` JOIN ${names.from(hop.references)} AS ${a} ON ${joinOn(previous, hop, a)}`;
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
export function unresolvedPredicate(m: ScaffoldModel, table: KeyedTable, alias: string, names = new Aliases()): string {
  return `${ownerOf(m, table, alias, names)} IS NULL`;
}

/** Rows of `table` (alias) whose edge lands in another owner than their derivation. */
export function conflictPredicate(
  m: ScaffoldModel,
  table: KeyedTable,
  edge: ConsistencyEdge,
  alias: string,
  names = new Aliases(),
): string {
  const mine = ownerOf(m, table, alias, names);
  const referenced = m.keyedTable(edge.references);
  if (!referenced) return 'false';
  const r = names.next('r');
  const matches = (ref: string): string =>
    edge.columns.map((c, i) => `${ref}.${q(edge.referencedColumns[i] as string)} = ${alias}.${q(c)}`).join(' AND ');
  let theirs: string;
  if (names.throughCtes) {
    // Citus refuses a subquery correlated inside one that reads a CTE: the referenced rows' owners are a CTE of their own.
    const cols = edge.referencedColumns.map((c) => `${r}.${q(c)}`).join(', ');
    const owners = names.read(`SELECT ${cols}, ${ownerOf(m, referenced, r, names)} AS owner FROM ${qt(edge.references)} AS ${r}`);
    theirs = `(SELECT ${owners}.owner FROM ${owners} WHERE ${matches(owners)})`;
  } else {
    theirs = `(SELECT ${ownerOf(m, referenced, r, names)} FROM ${qt(edge.references)} AS ${r} WHERE ${matches(r)})`;
  }
  return `${mine} <> ${theirs}`;
}

/** The key of the parent along `hop` for a row `alias` (NEW in a trigger). */
export function parentKey(m: ScaffoldModel, hop: Hop, alias: string, parentAlias = 'p', names = new Aliases()): string {
  return `(SELECT ${parentAlias}.${q(m.keyColumnOf(hop.references))} FROM ${names.from(hop.references)} AS ${parentAlias} WHERE ${joinOn(alias, hop, parentAlias)})`;
}

/** The key a row of `table` takes from its parents: COALESCE over the first hops of its paths. */
export function keyFromParents(m: ScaffoldModel, table: KeyedTable, alias: string, indent = '  ', names = new Aliases()): string {
  const each = m.firstHops(table).map((h) => parentKey(m, h, alias, 'p', names));
  if (each.length === 1) return each[0] as string;
  return `COALESCE(\n${each.map((e) => `${indent}  ${e}`).join(',\n')})`;
}

/** `t.id` or `(t.a, t.b)`: the row's identity in listings. */
export function rowIdList(table: KeyedTable, alias: string): string {
  return table.rowId.map((c) => `${alias}.${q(c)}`).join(', ');
}
