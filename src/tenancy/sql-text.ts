/**
 * Identifiers in generated SQL, quoted only where PostgreSQL needs it, so a DBA reads
 * `public.tasks` and `"teamMember"` as they would write them.
 */
import { UsageError } from '../errors.js';
import type { TableName } from './types.js';

/** Words that must be quoted as identifiers (PostgreSQL's reserved keywords, and the type-or-function ones that bite). */
const reserved = new Set(
  `all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate collation column
  concurrently constraint create cross current_catalog current_date current_role current_schema current_time current_timestamp
  current_user default deferrable desc distinct do else end except false fetch for foreign freeze from full grant group having
  ilike in initially inner intersect into is isnull join lateral leading left like limit localtime localtimestamp natural not
  notnull null offset on only or order outer overlaps placing primary references returning right select session_user similar
  some symmetric system_user table tablesample then to trailing true union unique user using variadic verbose when where window with`
    .split(/\s+/)
    .filter(Boolean),
);

/** An identifier as SQL text: bare when it is lower-case, plain and not reserved; else double-quoted. */
export function quoteIdent(name: string): string {
  if (/^[a-z_][a-z0-9_$]*$/.test(name) && !reserved.has(name)) return name;
  return `"${name.replace(/"/g, '""')}"`;
}

/** `schema.table` (as stored) to SQL text; the `public.` prefix is kept so a unit never depends on search_path. */
export function quoteQualified(name: TableName): string {
  const { schema, table } = splitTableName(name);
  return schema === undefined ? quoteIdent(table) : `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/** One part of a dotted name as written: its text (quotes taken off) and whether it was quoted. */
export interface NamePart {
  text: string;
  quoted: boolean;
}

/**
 * A dotted name as the user wrote it (`public.tasks`, `"my.schema".t`, `public."Customer
 * Accounts"`), read like SQL reads an identifier chain: a dot inside double quotes is part
 * of the name, `""` is a quote. Unlike SQL, an unquoted part keeps its case and may hold
 * spaces (names are matched as stored first: see graph.ts); surrounding blanks are dropped.
 * A name that does not parse is a UsageError (`name-invalid`) naming the position.
 */
export function parseQualifiedName(text: string, what = 'name'): NamePart[] {
  const parts: NamePart[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new UsageError(`${what} ${JSON.stringify(text)} is not a valid name: ${why} at character ${i + 1}`, {
      code: 'name-invalid',
      hint: 'write it as SQL would: schema.table, with double quotes around a part that holds a dot or a quote ("my.schema".orders, public."Customer Accounts")',
    });
  };
  for (;;) {
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (text[i] === '"') {
      let name = '';
      for (i++; ; i++) {
        if (i >= text.length) fail('a double quote is not closed');
        if (text[i] === '"') {
          if (text[i + 1] !== '"') break;
          i++;
        }
        name += text[i];
      }
      i++;
      if (name === '') fail('an empty quoted part ("")');
      parts.push({ text: name, quoted: true });
    } else {
      const start = i;
      while (i < text.length && text[i] !== '.' && text[i] !== '"') i++;
      const name = text.slice(start, i).trim();
      if (name === '') fail(i >= text.length && parts.length === 0 ? 'it is empty' : 'an empty part');
      if (text[i] === '"') fail('a double quote inside an unquoted part');
      parts.push({ text: name, quoted: false });
    }
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (i >= text.length) return parts;
    if (text[i] !== '.') fail('expected a dot after a quoted part');
    i++;
  }
}

/**
 * A table's name as the tenancy code keeps it: `schema.table`, each part as stored, the
 * schema double-quoted when it holds a dot or starts with a quote, so the first dot outside
 * quotes always ends the schema (`"my.schema".t` is not `my."schema.t"`, kept as `my.schema.t`).
 */
export function tableName(schema: string, table: string): TableName {
  return schema.includes('.') || schema.startsWith('"') ? `"${schema.replace(/"/g, '""')}".${table}` : `${schema}.${table}`;
}

/**
 * A TableName as a user writes it in tenantify.config.json or on the command line, and as
 * it reads back through parseQualifiedName: `public.` left out (`short`), a part quoted only
 * when it holds a dot or a quote or starts or ends with a blank.
 */
export function writtenName(name: TableName, short = true): string {
  const { schema, table } = splitTableName(name);
  return schema === undefined || (short && schema === 'public') ? writtenPart(table) : `${writtenPart(schema)}.${writtenPart(table)}`;
}

/** One part of a name as written (see writtenName): quoted only when it holds a dot or a quote or starts or ends with a blank. */
export function writtenPart(text: string): string {
  return /[."]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A list of names for one line: all of them when few, else the first three and how many more (a table with 55 partitions). */
export function someNames(names: readonly string[], shown = 3): string {
  if (names.length <= shown + 1) return names.join(', ');
  return `${names.slice(0, shown).join(', ')} and ${names.length - shown} more`;
}

/** The two parts of a TableName (see tableName); a name without a dot has no schema. */
export function splitTableName(name: TableName): { schema: string | undefined; table: string } {
  if (name.startsWith('"')) {
    const [schema] = parseQualifiedName(name.slice(0, closingQuote(name) + 1));
    return { schema: schema?.text, table: name.slice(closingQuote(name) + 2) };
  }
  const dot = name.indexOf('.');
  return dot === -1 ? { schema: undefined, table: name } : { schema: name.slice(0, dot), table: name.slice(dot + 1) };
}

function closingQuote(name: string): number {
  for (let i = 1; i < name.length; i++) {
    if (name[i] !== '"') continue;
    if (name[i + 1] === '"') i++;
    else return i;
  }
  return name.length;
}

/** A string as a SQL literal. */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
