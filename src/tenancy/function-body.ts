/**
 * The relations a function's body reads, from PostgreSQL's own parse trees: a SQL body
 * (the string of `LANGUAGE sql AS $$...$$`) with the SQL parser, a PL/pgSQL body with the
 * PL/pgSQL parser, whose every embedded statement and expression is then parsed as SQL.
 * Dynamic SQL (`EXECUTE`) cannot be read: it is reported as such. SQL-standard bodies
 * (`BEGIN ATOMIC`) need none of this: PostgreSQL records what they read in pg_depend.
 *
 * Pure once the parser is loaded (`loadBodyParsers()`: pg-parser.ts).
 */
import { loadedPgParser, loadPgParser, type PgParser } from './pg-parser.js';
import type { TableName } from './types.js';

type Node = Record<string, unknown>;

export async function loadBodyParsers(): Promise<void> {
  await loadPgParser();
}

export interface BodyReads {
  /** Relation names as written: `tasks`, `public.tasks`. */
  names: { schema: string | null; name: string }[];
  /** The body runs SQL built at run time (`EXECUTE`): what it reads cannot be known. */
  dynamic: boolean;
  /** The body did not parse (the reason). */
  unreadable?: string;
}

/**
 * What a body reads. `definition` is pg_get_functiondef() (the PL/pgSQL parser wants the
 * whole CREATE FUNCTION); `source` is prosrc (a SQL body is parsed from it).
 */
export function bodyReads(language: string, source: string, definition: string): BodyReads {
  const parsers = loadedPgParser('loadBodyParsers');
  try {
    if (language === 'sql') return { names: relationsIn(parsers.parseSync(source)), dynamic: false };
    if (language === 'plpgsql') return plpgsqlReads(parsers, definition);
  } catch (error) {
    return { names: [], dynamic: false, unreadable: (error as Error).message };
  }
  return { names: [], dynamic: false, unreadable: `a body in ${language} cannot be read` };
}

function plpgsqlReads(p: PgParser, definition: string): BodyReads {
  const tree = p.parsePlPgSQLSync(definition);
  const names: BodyReads['names'] = [];
  let dynamic = false;
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (!value || typeof value !== 'object') return;
    const node = value as Node;
    for (const [kind, inner] of Object.entries(node)) {
      if (kind === 'PLpgSQL_stmt_dynexecute' || kind === 'PLpgSQL_stmt_dynfors') dynamic = true;
      if (kind === 'PLpgSQL_stmt_open' && (inner as Node)['dynquery']) dynamic = true;
      if (kind === 'PLpgSQL_expr') {
        const { query, parseMode } = inner as { query: string; parseMode?: number };
        // Mode 0 is a whole statement; 3 to 5 an assignment (`n := <expression>`); the others an expression (which may hold a sub-select).
        const sql =
          parseMode === 0 || parseMode === undefined ? query : `SELECT ${parseMode >= 3 && parseMode <= 5 ? assigned(query) : query}`;
        try {
          names.push(...relationsIn(p.parseSync(sql)));
        } catch {
          // An assignment target or a cursor argument list: no relation in it.
        }
        continue;
      }
      visit(inner);
    }
  };
  visit(tree);
  return { names, dynamic };
}

/** The expression of an assignment: what follows `:=` (or the first `=`). */
function assigned(query: string): string {
  const at = query.indexOf(':=');
  if (at >= 0) return query.slice(at + 2);
  const eq = query.indexOf('=');
  return eq >= 0 ? query.slice(eq + 1) : query;
}

/** Every RangeVar of a parse tree but the names of its own CTEs. */
function relationsIn(tree: unknown): BodyReads['names'] {
  const ctes = new Set<string>();
  const found: BodyReads['names'] = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (!value || typeof value !== 'object') return;
    const node = value as Node;
    const cte = node['CommonTableExpr'] as { ctename?: string } | undefined;
    if (cte?.ctename) ctes.add(cte.ctename);
    const range = node['RangeVar'] as { schemaname?: string; relname?: string } | undefined;
    if (range?.relname) found.push({ schema: range.schemaname ?? null, name: range.relname });
    for (const inner of Object.values(node)) visit(inner);
  };
  visit(tree);
  return found.filter((r) => r.schema !== null || !ctes.has(r.name));
}

/** A name as written, resolved along the search path against the relations that exist (the first schema that has it). */
export function resolveName(
  name: { schema: string | null; name: string },
  searchPath: string[],
  exists: (name: TableName) => boolean,
): TableName {
  if (name.schema) return `${name.schema}.${name.name}`;
  for (const schema of searchPath) {
    if (exists(`${schema}.${name.name}`)) return `${schema}.${name.name}`;
  }
  return `${searchPath[0] ?? 'public'}.${name.name}`;
}
