/**
 * What each statement of a file does, for the rules: read from its parse tree (libpg-query,
 * the parser the plan loader uses) and kept in the split cache under `lint:` keys, so lint
 * on an unchanged plan loads no parser (loading it also changes V8's flags, which would
 * make the launcher's code cache useless for the run).
 */
import { sqlParser, type ParseSync } from '../plan/sql-split.js';
import { SplitCache } from '../plan/split-cache.js';
import { isStreamed, type Script } from '../plan/types.js';
import { factsCode, statementFacts, type StatementFacts } from './locks.js';
import type { ParsedStatement } from './rules.js';

/**
 * The statements of each script with their facts, in the scripts' order. A streamed script
 * (a unit too large to hold its statements: generated INSERTs) is walked once, its facts not
 * cached, and only its statements with facts are kept: no rule reads the others.
 */
export async function parsedStatements(scripts: Pick<Script, 'statements'>[]): Promise<ParsedStatement[][]> {
  const cache = SplitCache.open<StatementFacts>([import.meta.url, factsCode]);
  const key = (sql: string): string => `lint:${SplitCache.key(sql)}`;
  const missing = scripts.some(
    ({ statements }) => isStreamed(statements) || statements.some((st) => !plainInsert(st.sql) && cache.get(key(st.sql)) === undefined),
  );
  const parser = missing ? await sqlParser() : undefined;
  const factsOf = (sql: string, cached: boolean): StatementFacts => {
    // An INSERT takes no strong lock, creates, sets and proves nothing: no rule reads it.
    if (plainInsert(sql)) return {};
    let facts = cached ? cache.get(key(sql)) : undefined;
    if (facts === undefined) {
      facts = statementFacts((parser as ParseSync)(sql).stmts?.[0]?.stmt ?? {});
      if (cached) cache.set(key(sql), facts);
    }
    return facts;
  };
  const result = scripts.map(({ statements }) => {
    const streamed = isStreamed(statements);
    const parsed: ParsedStatement[] = [];
    for (const st of statements) {
      const facts = factsOf(st.sql, !streamed);
      if (!streamed || Object.keys(facts).length > 0) parsed.push({ line: st.line, sql: st.sql, facts });
    }
    return parsed;
  });
  cache.save();
  return result;
}

function plainInsert(sql: string): boolean {
  return /^INSERT\s/i.test(sql);
}
