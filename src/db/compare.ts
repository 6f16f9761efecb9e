/**
 * What a database holds, in a form two states can be compared by: every schema object with
 * its definition, and a fingerprint of every table's content. Used by `rehearse` to prove a
 * full rollback returned the database to exactly where it started, and to name what differs.
 */
import type pg from 'pg';

export interface DatabaseState {
  /** "column public.users.organization_id" → its definition. */
  objects: Map<string, string>;
  /** "public.users" → "rows:md5". */
  content: Map<string, string>;
  /**
   * "public.users" → each row's key (its primary key, else the whole row) → a hash of the
   * row, for tables of up to rowKeyLimit rows: what names the rows that differ.
   */
  rows: Map<string, { key: string; hashes: Map<string, string> }>;
  /** "public.users" → each column → a fingerprint of its values (in primary key order, else sorted): what names the columns that differ. */
  columns: Map<string, Map<string, string>>;
}

/** Tables larger than this are compared by count and checksum only (their rows would cost too much memory). */
export const rowKeyLimit = 100_000;

const objectQueries = (exclude: string[]): string => {
  const skip = `NOT IN (${['pg_catalog', 'information_schema', 'pg_toast', ...exclude].map((s) => `'${s.replace(/'/g, "''")}'`).join(', ')})`;
  return `
  SELECT 'table ' || format('%I.%I', n.nspname, c.relname) AS key,
         CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view: ' || pg_get_viewdef(c.oid)
           WHEN 'm' THEN 'materialized view: ' || pg_get_viewdef(c.oid) WHEN 'S' THEN 'sequence' ELSE c.relkind::text END AS def
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND n.nspname ${skip}
  UNION ALL
  SELECT 'column ' || format('%I.%I.%I', n.nspname, c.relname, a.attname),
         format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') || ' #' || a.attnum
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname ${skip}
  UNION ALL
  SELECT 'index ' || format('%I.%I', n.nspname, c.relname), pg_get_indexdef(c.oid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname ${skip}
  UNION ALL
  SELECT 'constraint ' || format('%I.%I.%I', n.nspname, c.relname, k.conname), pg_get_constraintdef(k.oid)
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname ${skip}
  UNION ALL
  SELECT 'trigger ' || format('%I.%I.%I', n.nspname, c.relname, t.tgname), pg_get_triggerdef(t.oid)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE NOT t.tgisinternal AND n.nspname ${skip}
  UNION ALL
  SELECT 'policy ' || format('%I.%I.%I', n.nspname, c.relname, p.polname), pg_get_expr(p.polqual, p.polrelid)
    FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname ${skip}
  UNION ALL
  SELECT 'function ' || format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), md5(pg_get_functiondef(p.oid))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE p.prokind IN ('f', 'p') AND n.nspname ${skip}
  UNION ALL
  SELECT 'type ' || format('%I.%I', n.nspname, t.typname),
         CASE t.typtype WHEN 'e' THEN 'enum (' || (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
           ELSE t.typtype::text END
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
   WHERE t.typtype IN ('e', 'd', 'c') AND n.nspname ${skip}
     AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
  UNION ALL
  SELECT 'schema ' || format('%I', n.nspname), 'schema' FROM pg_namespace n
   WHERE n.nspname ${skip} AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
  UNION ALL
  SELECT 'extension ' || e.extname, e.extversion FROM pg_extension e`;
};

export async function describeDatabase(client: pg.Client, excludeSchemas: string[]): Promise<DatabaseState> {
  const objects = new Map<string, string>();
  for (const row of (await client.query<{ key: string; def: string | null }>(objectQueries(excludeSchemas))).rows) {
    objects.set(row.key, row.def ?? '');
  }
  const content = new Map<string, string>();
  const rows: DatabaseState['rows'] = new Map();
  const columns: DatabaseState['columns'] = new Map();
  const tables = [...objects.entries()].filter(
    ([key, def]) => key.startsWith('table ') && (def === 'table' || def === 'partitioned table'),
  );
  for (const [key] of tables) {
    const name = key.slice('table '.length);
    const result = await client.query<{ n: number; md5: string | null }>(
      `SELECT count(*)::int AS n, md5(string_agg(r::text, E'\\n' ORDER BY r::text)) AS md5 FROM ${name} r`,
    );
    const count = result.rows[0]?.n ?? 0;
    content.set(name, `${count}:${result.rows[0]?.md5 ?? ''}`);
    if (count <= rowKeyLimit) rows.set(name, await rowHashes(client, name));
    if (count > 0) columns.set(name, await columnPrints(client, name));
  }
  for (const [key, def] of objects) {
    if (def === 'sequence') {
      const name = key.slice('table '.length);
      const seq = await client.query<{ v: string }>(
        `SELECT last_value::text || CASE WHEN is_called THEN '' ELSE ' (not called)' END AS v FROM ${name}`,
      );
      content.set(name, `sequence at ${seq.rows[0]?.v ?? '?'}`);
    }
  }
  return { objects, content, rows, columns };
}

async function primaryKeyColumns(client: pg.Client, name: string): Promise<string[]> {
  const pk = await client.query<{ attname: string }>(
    `SELECT a.attname FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY k.n`,
    [name],
  );
  return pk.rows.map((r) => r.attname);
}

const quoteName = (c: string): string => `"${c.replace(/"/g, '""')}"`;

/** One fingerprint per column, in one scan: its values in primary key order (a table without one: each column's values sorted). */
async function columnPrints(client: pg.Client, name: string): Promise<Map<string, string>> {
  const { rows: attributes } = await client.query<{ attname: string }>(
    'SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum',
    [name],
  );
  const prints = new Map<string, string>();
  if (attributes.length === 0) return prints;
  const key = (await primaryKeyColumns(client, name)).map((c) => `r.${quoteName(c)}`);
  const select = attributes.map((a, i) => {
    const value = `r.${quoteName(a.attname)}::text`;
    return `md5(string_agg(coalesce(${value}, E'\\\\N'), E'\\n' ORDER BY ${key.length > 0 ? key.join(', ') : value})) AS c${i}`;
  });
  const result = await client.query<Record<string, string | null>>(`SELECT ${select.join(', ')} FROM ${name} r`);
  const row = result.rows[0] ?? {};
  attributes.forEach((a, i) => prints.set(a.attname, row[`c${i}`] ?? ''));
  return prints;
}

/** The columns whose values differ between two states of a table (columns of one state only are the schema's difference, not named here). */
export function columnDifferences(before: Map<string, string> | undefined, after: Map<string, string> | undefined): string[] {
  if (!before || !after) return [];
  return [...before].filter(([column, print]) => after.has(column) && after.get(column) !== print).map(([column]) => column);
}

/** Each row by its primary key (else the whole row, hash empty): what changed, what is gone, what is new. */
async function rowHashes(client: pg.Client, name: string): Promise<{ key: string; hashes: Map<string, string> }> {
  const pk = await client.query<{ attname: string }>(
    `SELECT a.attname FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY k.n`,
    [name],
  );
  const columns = pk.rows.map((r) => r.attname);
  const quoted = columns.map((c) => `"${c.replace(/"/g, '""')}"`);
  const keyExpression =
    columns.length === 0
      ? 'r::text'
      : columns.length === 1
        ? `r.${quoted[0]}::text`
        : `row(${quoted.map((c) => `r.${c}`).join(', ')})::text`;
  const hashExpression = columns.length === 0 ? "''" : 'left(md5(r::text), 16)';
  const result = await client.query<{ k: string; h: string }>(`SELECT ${keyExpression} AS k, ${hashExpression} AS h FROM ${name} r`);
  const hashes = new Map<string, string>();
  for (const row of result.rows) hashes.set(row.k, row.h);
  return { key: columns.length === 0 ? 'row' : columns.join(', '), hashes };
}

/** What differs between two states, one line each, naming the object or table. */
export function differences(before: DatabaseState, after: DatabaseState): string[] {
  const lines: string[] = [];
  for (const [key, def] of before.objects) {
    const now = after.objects.get(key);
    if (now === undefined) lines.push(`${key} is missing (it was: ${def})`);
    else if (now !== def) lines.push(`${key} changed: was ${def}, is ${now}`);
  }
  for (const [key, def] of after.objects) {
    if (!before.objects.has(key)) lines.push(`${key} is left over (${def})`);
  }
  for (const [table, print] of before.content) {
    const now = after.content.get(table);
    if (now !== undefined && now !== print) {
      const columns = columnDifferences(before.columns?.get(table), after.columns?.get(table));
      const named = columns.length > 0 ? `; columns that differ: ${columns.join(', ')}` : '';
      lines.push(
        print.startsWith('sequence')
          ? `${table}: ${print}, now ${now}`
          : `content of ${table} differs: ${describePrint(print)} before, ${describePrint(now)} after${named}${rowDifferences(before.rows.get(table), after.rows.get(table))}`,
      );
    }
  }
  return lines;
}

/** How many rows to name per kind of difference. */
const namedRows = 3;

/** "; changed: id 5, id 17 (and 3 more); gone: ...; new: ..." naming a few rows by key, when both states have them. */
export function rowDifferences(
  before: { key: string; hashes: Map<string, string> } | undefined,
  after: { key: string; hashes: Map<string, string> } | undefined,
): string {
  if (!before || !after) return '';
  const changed: string[] = [];
  const gone: string[] = [];
  const added: string[] = [];
  for (const [key, hash] of before.hashes) {
    const now = after.hashes.get(key);
    if (now === undefined) gone.push(key);
    else if (now !== hash) changed.push(key);
  }
  for (const key of after.hashes.keys()) if (!before.hashes.has(key)) added.push(key);
  const name = (keys: string[]): string => {
    const shown = keys
      .sort(naturalOrder)
      .slice(0, namedRows)
      .map((k) => (before.key === 'row' ? k : `${before.key} ${k}`));
    return `${shown.join(', ')}${keys.length > namedRows ? ` (and ${keys.length - namedRows} more)` : ''}`;
  };
  const parts = [
    ...(changed.length > 0 ? [`changed: ${name(changed)}`] : []),
    ...(gone.length > 0 ? [`gone: ${name(gone)}`] : []),
    ...(added.length > 0 ? [`new: ${name(added)}`] : []),
  ];
  return parts.length > 0 ? `; ${parts.join('; ')}` : '';
}

function naturalOrder(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

function describePrint(print: string): string {
  const [rows, md5] = print.split(':');
  return `${rows} rows (md5 ${(md5 ?? '').slice(0, 8)})`;
}
