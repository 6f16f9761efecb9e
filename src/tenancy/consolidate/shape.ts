/**
 * The preflight of `tenancy consolidate`: every source's shape (tables, columns, types,
 * defaults, constraints, indexes) against the reference's. Pure: catalog rows in, the
 * differences out, each one a DBA can act on ("customer_zeta.tasks: extra column priority
 * (integer)"). Names of the source schema inside definitions are left out, so
 * `REFERENCES customer_a.users(id)` and `REFERENCES customer_b.users(id)` are one shape.
 */
import type { CatalogTable } from '../types.js';

/** One table of a source, as the preflight and the plan see it: the catalog's table and its columns' defaults. */
export interface SourceTable {
  catalog: CatalogTable;
  /** Column name → pg_get_expr() of its default. */
  defaults: Record<string, string>;
}

export interface SourceShape {
  /** The source's name: its schema (or database). */
  source: string;
  /** The schema its tables live in. */
  schema: string;
  tables: SourceTable[];
}

export type DriftKind =
  | 'missing-table'
  | 'extra-table'
  | 'missing-column'
  | 'extra-column'
  | 'column-type'
  | 'column-nullability'
  | 'column-default'
  | 'missing-constraint'
  | 'extra-constraint'
  | 'missing-index'
  | 'extra-index';

export interface Drift {
  source: string;
  table: string;
  kind: DriftKind;
  /** What differs, in words: `extra column priority (integer)`. */
  detail: string;
}

/** The differences of every source from the reference (none: all of one shape). */
export function compareShapes(reference: SourceShape, sources: SourceShape[]): Drift[] {
  const drifts: Drift[] = [];
  for (const source of sources) {
    if (source.source === reference.source) continue;
    drifts.push(...compareShape(reference, source));
  }
  return drifts;
}

function compareShape(reference: SourceShape, source: SourceShape): Drift[] {
  const drifts: Drift[] = [];
  const add = (table: string, kind: DriftKind, detail: string) => drifts.push({ source: source.source, table, kind, detail });
  const theirs = new Map(source.tables.map((t) => [t.catalog.table, t]));
  const ours = new Map(reference.tables.map((t) => [t.catalog.table, t]));
  for (const [name, ref] of ours) {
    const other = theirs.get(name);
    if (!other) {
      add(name, 'missing-table', `missing table ${name}`);
      continue;
    }
    compareColumns(ref, other, reference.schema, source.schema, (kind, detail) => add(name, kind, detail));
    compareSet(constraintsOf(ref, reference.schema), constraintsOf(other, source.schema), 'constraint', (kind, detail) =>
      add(name, kind, detail),
    );
    compareSet(indexesOf(ref, reference.schema), indexesOf(other, source.schema), 'index', (kind, detail) => add(name, kind, detail));
  }
  for (const name of theirs.keys()) if (!ours.has(name)) add(name, 'extra-table', `extra table ${name}`);
  return drifts;
}

function compareColumns(
  ref: SourceTable,
  other: SourceTable,
  refSchema: string,
  otherSchema: string,
  add: (kind: DriftKind, detail: string) => void,
): void {
  const theirs = new Map(other.catalog.columns.map((c) => [c.name, c]));
  const ours = new Set(ref.catalog.columns.map((c) => c.name));
  for (const column of ref.catalog.columns) {
    const o = theirs.get(column.name);
    if (!o) {
      add('missing-column', `missing column ${column.name} (${column.type})`);
      continue;
    }
    if (o.type !== column.type) add('column-type', `column ${column.name} is ${o.type}, the reference's is ${column.type}`);
    if (o.notNull !== column.notNull)
      add(
        'column-nullability',
        `column ${column.name} is ${o.notNull ? 'NOT NULL' : 'nullable'}, the reference's is ${column.notNull ? 'NOT NULL' : 'nullable'}`,
      );
    const [ours, others] = [
      withoutSchema(ref.defaults[column.name] ?? '', refSchema),
      withoutSchema(other.defaults[column.name] ?? '', otherSchema),
    ];
    if (ours !== others)
      add('column-default', `column ${column.name} defaults to ${others || 'nothing'}, the reference's to ${ours || 'nothing'}`);
  }
  for (const column of other.catalog.columns)
    if (!ours.has(column.name)) add('extra-column', `extra column ${column.name} (${column.type})`);
}

/** Name → definition without the schema; compared by definition, named in the report. */
function constraintsOf(table: SourceTable, schema: string): Map<string, string> {
  const entries: [string, string][] = [
    ...table.catalog.uniques.map((u): [string, string] => [u.name, u.definition ?? `${u.kind} (${u.columns.join(', ')})`]),
    ...table.catalog.foreignKeys.map((f): [string, string] => [
      f.name,
      f.definition ?? `FOREIGN KEY (${f.columns.join(', ')}) REFERENCES ${f.references}`,
    ]),
    ...table.catalog.checks.map((c): [string, string] => [c.name, c.definition]),
  ];
  return new Map(entries.map(([name, definition]) => [withoutSchema(definition, schema), name]));
}

function indexesOf(table: SourceTable, schema: string): Map<string, string> {
  return new Map(
    table.catalog.indexes
      .filter((i) => !i.constraint)
      .map((i) => [withoutSchema((i.definition ?? '').replace(/^CREATE (UNIQUE )?INDEX \S+ ON /, 'CREATE $1INDEX ON '), schema), i.name]),
  );
}

function compareSet(
  ours: Map<string, string>,
  theirs: Map<string, string>,
  what: 'constraint' | 'index',
  add: (kind: DriftKind, detail: string) => void,
): void {
  for (const [definition, name] of ours)
    if (!theirs.has(definition)) add(what === 'index' ? 'missing-index' : 'missing-constraint', `missing ${what} ${name}: ${definition}`);
  for (const [definition, name] of theirs)
    if (!ours.has(definition)) add(what === 'index' ? 'extra-index' : 'extra-constraint', `extra ${what} ${name}: ${definition}`);
}

/** A definition with `schema.` (quoted or not) taken out of qualified names. */
export function withoutSchema(definition: string, schema: string): string {
  const bare = schema.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const quoted = `"${schema.replace(/"/g, '""')}"`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return definition.replace(new RegExp(`(^|[^\\w$"])(?:${bare}|${quoted})\\.`, 'g'), '$1');
}

/** The report of the drifts: one line per difference, grouped by source. */
export function describeDrifts(drifts: Drift[]): string[] {
  return drifts.map((d) => `${d.source}.${d.table}: ${d.detail}`);
}
