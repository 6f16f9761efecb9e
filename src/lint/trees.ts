/**
 * What each statement of a file does, for the rules: read from its parse tree (libpg-query,
 * the parser the plan loader uses) and kept in the split cache under `lint:` keys, so lint
 * on an unchanged plan loads no parser (loading it also changes V8's flags, which would
 * make the launcher's code cache useless for the run).
 */
import { sqlParser, type ParseSync } from '../plan/sql-split.js';
import { SplitCache } from '../plan/split-cache.js';
import type { Script } from '../plan/types.js';
import { factsCode, statementFacts, type StatementFacts } from './locks.js';
import type { ParsedStatement } from './rules.js';

/** The statements of each script with their facts, in the scripts' order. */
export async function parsedStatements(scripts: Pick<Script, 'statements'>[]): Promise<ParsedStatement[][]> {
  const cache = SplitCache.open<StatementFacts>([import.meta.url, factsCode]);
  const key = (sql: string): string => `lint:${SplitCache.key(sql)}`;
  const missing = scripts.some((s) => s.statements.some((st) => cache.get(key(st.sql)) === undefined));
  const parser = missing ? await sqlParser() : undefined;
  const result = scripts.map((s) =>
    s.statements.map((st) => {
      let facts = cache.get(key(st.sql));
      if (facts === undefined) {
        facts = statementFacts((parser as ParseSync)(st.sql).stmts?.[0]?.stmt ?? {});
        cache.set(key(st.sql), facts);
      }
      return { line: st.line, sql: st.sql, facts };
    }),
  );
  cache.save();
  return result;
}
