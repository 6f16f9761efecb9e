/** Parse trees of a file's statements, from libpg-query (the parser the plan loader uses). */
import { loadSqlParser } from '../plan/sql-unit.js';
import type { Script } from '../plan/types.js';
import { runtimeImport } from '../runtime-import.js';
import type { ParsedStatement } from './rules.js';

type ParseSync = (sql: string) => { stmts?: { stmt: Record<string, unknown> }[] };
let parse: ParseSync | undefined;

export async function loadParser(): Promise<void> {
  if (parse) return;
  await loadSqlParser(); // the same module, with the same compiler flags
  const mod = await runtimeImport('libpg-query', () => import('libpg-query'));
  await mod.loadModule();
  parse = mod.parseSync as ParseSync;
}

/** The body's statements with their trees. Call loadParser() first. */
export function parsedStatements(script: Script): ParsedStatement[] {
  if (!parse) throw new Error('loadParser() must run first');
  const p = parse;
  return script.statements.map((s) => ({ line: s.line, sql: s.sql, tree: p(s.sql).stmts?.[0]?.stmt ?? {} }));
}
