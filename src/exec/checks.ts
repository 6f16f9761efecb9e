/** precheck and verify queries: rows returned are violations. */
import type pg from 'pg';
import type { Check, Script } from '../plan/types.js';
import { StatementFailure, type CheckResult, type PgErrorFields } from './failure.js';

const sampleSize = 5;

const prefix = 'SELECT to_jsonb(v) AS row, count(*) OVER () AS total FROM (';

/** Runs one check. A query that fails is a StatementFailure located in `script` (when given). */
export async function runCheck(
  client: pg.Client,
  check: { name: string; sql: string; line?: number },
  section: Check['section'],
  script?: Script,
): Promise<CheckResult & { durationMs: number }> {
  const started = performance.now();
  // One round trip: the first rows, and how many there are in all.
  const query = `${prefix}${check.sql}\n) AS v LIMIT ${sampleSize}`;
  let result: pg.QueryResult<{ row: Record<string, unknown>; total: number }>;
  try {
    result = await client.query<{ row: Record<string, unknown>; total: number }>(query);
  } catch (error) {
    const e = error as PgErrorFields;
    if (!script || typeof e.code !== 'string') throw error;
    const position = e.position ? String(Math.max(1, Number(e.position) - prefix.length)) : undefined;
    const statement = { sql: check.sql, line: check.line ?? 0, column: 1, hash: '' };
    throw new StatementFailure(script, statement, { ...pick(e), ...(position ? { position } : {}) });
  }
  const violations = Number(result.rows[0]?.total ?? 0);
  return {
    name: check.name,
    section,
    ok: violations === 0,
    violations,
    sample: result.rows.map((r) => r.row),
    durationMs: Math.round(performance.now() - started),
  };
}

export async function runChecks(client: pg.Client, checks: Check[], section: Check['section'], script?: Script): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checks) results.push(await runCheck(client, check, section, script));
  return results;
}

export function pick(e: PgErrorFields): PgErrorFields {
  const fields: PgErrorFields = { message: e.message };
  for (const key of ['code', 'detail', 'hint', 'position', 'where'] as const) if (e[key] !== undefined) fields[key] = e[key];
  return fields;
}
