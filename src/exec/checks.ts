/**
 * precheck and verify queries: rows returned are violations.
 *
 * A precheck in ranges (`-- tenantify:ranges <table> key=<column> size=N` under its marker)
 * runs once per range of the table's key, each its own short query with the throttle's duty
 * pause after it: over a large table, one query would hold a snapshot (and cleanup behind it)
 * and a core for as long as it scans, beside the application. On pgbench's 1M accounts,
 * `WHERE bid IS NULL` in one query is a 0.5 s scan that stalled TPC-B's transactions for its
 * length (README, pgbench-live). The violations are every range's, the sample the first found.
 * Rows added behind the walk (below its cursor, or past the last key when it started) are not
 * seen: a precheck proves the rows there when it runs, as a single query does at its snapshot.
 */
import type pg from 'pg';
import type { BatchDirective, Check, Script } from '../plan/types.js';
import type { Session } from '../db/connection.js';
import { StatementFailure, type CheckResult, type PgErrorFields } from './failure.js';
import { rangesOf } from './key-ranges.js';
import { dutyPause, type ThrottleSettings } from './throttle.js';

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
  const { violations, sample } = await firstRows(client, check, script);
  return { name: check.name, section, ok: violations === 0, violations, sample, durationMs: Math.round(performance.now() - started) };
}

/** One round trip: the first rows the query returns (with `params`), and how many there are in all. */
async function firstRows(
  client: pg.Client,
  check: { sql: string; line?: number },
  script: Script | undefined,
  params?: string[],
): Promise<{ violations: number; sample: Record<string, unknown>[] }> {
  const query = `${prefix}${check.sql}\n) AS v LIMIT ${sampleSize}`;
  let result: pg.QueryResult<{ row: Record<string, unknown>; total: number }>;
  try {
    result = await client.query<{ row: Record<string, unknown>; total: number }>(query, params);
  } catch (error) {
    const e = error as PgErrorFields;
    if (!script || typeof e.code !== 'string') throw error;
    const position = e.position ? String(Math.max(1, Number(e.position) - prefix.length)) : undefined;
    const statement = { sql: check.sql, line: check.line ?? 0, column: 1, hash: '' };
    throw new StatementFailure(script, statement, { ...pick(e), ...(position ? { position } : {}) });
  }
  return { violations: Number(result.rows[0]?.total ?? 0), sample: result.rows.map((r) => r.row) };
}

/** How a precheck in ranges paces itself: the plan's throttle (its duty cycle), and a way to stop between ranges. */
export interface RangePacing {
  throttle: Pick<ThrottleSettings, 'enabled' | 'duty'>;
  /** Throws when the run was asked to stop (a signal): checked before each range. */
  stopIfAsked: () => void;
}

/** A precheck in ranges: its query once per range of the table's key ($1 exclusive, $2 inclusive), a duty pause after each. */
async function runRangedCheck(
  session: Session,
  check: Check,
  walked: BatchDirective,
  script: Script,
  pacing: RangePacing,
): Promise<CheckResult & { durationMs: number }> {
  const started = performance.now();
  const ranges = rangesOf(session, script, walked);
  const [walk] = await ranges.segments(1);
  let violations = 0;
  const sample: Record<string, unknown>[] = [];
  // Up to the last key now: rows added past it come after the precheck (see the top of the file).
  const end = walk ? await ranges.last() : undefined;
  for (let cursor = walk?.cursor; cursor !== undefined && end !== undefined;) {
    pacing.stopIfAsked();
    const upper = await ranges.upperBound(cursor, walked.size, end);
    if (upper === undefined) break;
    const rangeStarted = performance.now();
    const found = await firstRows(session.client, check, script, [cursor, upper]);
    violations += found.violations;
    sample.push(...found.sample.slice(0, sampleSize - sample.length));
    cursor = upper;
    const pause = pacing.throttle.enabled ? dutyPause(performance.now() - rangeStarted, pacing.throttle.duty) : 0;
    if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
  }
  return {
    name: check.name,
    section: check.section,
    ok: violations === 0,
    violations,
    sample,
    durationMs: Math.round(performance.now() - started),
  };
}

export async function runChecks(
  session: Session,
  checks: Check[],
  section: Check['section'],
  script: Script,
  pacing: RangePacing,
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checks)
    results.push(
      check.ranges
        ? await runRangedCheck(session, check, check.ranges, script, pacing)
        : await runCheck(session.client, check, section, script),
    );
  return results;
}

export function pick(e: PgErrorFields): PgErrorFields {
  const fields: PgErrorFields = { message: e.message };
  for (const key of ['code', 'detail', 'hint', 'position', 'where'] as const) if (e[key] !== undefined) fields[key] = e[key];
  return fields;
}
