/** The usual unit: body, verify and ledger in one transaction. */
import type { CheckResult } from './failure.js';
import { asStatementFailure, cancellable, inTransaction, retrying, runStatement, timeoutSettings, unitContext, verifyAndRecordApplied } from './steps.js';
import type { ExecContext, UnitOutcome, UnitRunner } from './context.js';
import type { PlanEntry } from '../plan/planner.js';
import type { Check, Unit } from '../plan/types.js';
import type pg from 'pg';

export const transactionalRunner: UnitRunner = {
  async run(ctx: ExecContext, entry: PlanEntry, startedAt: number, messageFailed = false): Promise<UnitOutcome> {
    const { unit } = entry;
    if (!messageFailed && fitsOneMessage(ctx, unit)) {
      const checks = await inOneMessage(ctx, entry);
      if (checks) return { checks };
    }
    return retrying(ctx, unit, () =>
      cancellable(ctx, () =>
        inTransaction(ctx, unit.options, async () => {
          if (unit.definition?.type === 'unit') {
            await unit.definition.up(ctx.session.db, unitContext(ctx, unit.id)).catch((error: unknown) => {
              throw asStatementFailure(error, unit, undefined);
            });
          } else {
            for (const statement of unit.statements) await runStatement(ctx, unit, statement);
          }
          return { checks: await verifyAndRecordApplied(ctx, entry, startedAt) };
        }),
      ),
    );
  },
};

/** A SQL unit of a real run: a dry run keeps its savepoints, a TypeScript unit needs its round trips. */
export function fitsOneMessage(ctx: ExecContext, unit: Unit): boolean {
  return !ctx.dryRun && unit.definition === undefined && unit.statements.length > 0;
}

/**
 * The whole unit as one message, one round trip instead of one per statement (see
 * messageText). When anything in it fails, it is rolled back whole and this returns
 * undefined: the caller runs the unit again statement by statement, which places the error
 * under its line, shows the verify's rows, and retries lock timeouts. (The one trace a
 * failed first attempt leaves is what no rollback undoes, such as sequence values.)
 */
async function inOneMessage(ctx: ExecContext, entry: PlanEntry): Promise<CheckResult[] | undefined> {
  const unit = unitStatements(ctx, entry, []);
  try {
    await cancellable(ctx, () => sendMessage(ctx, messageText([entry], [unit])));
    return unit.checks;
  } catch (error) {
    await ctx.session.client.query('ROLLBACK').catch(() => {});
    if (ctx.interrupt.requested || !isServerError(error)) throw error;
    await ctx.ledger.recheckPrepared();
    return undefined;
  }
}

/**
 * Sends a message of units (see messageText). Its ledger records execute statements the
 * session prepares once: they are prepared first when the session lacks them.
 */
export async function sendMessage(ctx: ExecContext, text: string): Promise<pg.QueryResult[]> {
  await ctx.ledger.prepare();
  const results = (await ctx.session.client.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
  return Array.isArray(results) ? results : [results];
}

/** An error the server sent (it has a SQLSTATE), as opposed to a lost connection or a bug. */
export function isServerError(error: unknown): boolean {
  return typeof (error as { code?: unknown }).code === 'string';
}

/** A unit as statements: its start in the ledger (when it travels with the unit), its transaction's inside, and the verify results it records. */
export interface UnitStatements {
  start: string[];
  body: string[];
  checks: CheckResult[];
}

/**
 * A unit's statements for a message: its start, then inside its transaction the timeouts,
 * the body, each verify query as a block that raises when it returns a row, and the
 * ledger's `applied`.
 */
export function unitStatements(ctx: ExecContext, entry: PlanEntry, start: string[]): UnitStatements {
  const { unit } = entry;
  const checks: CheckResult[] = unit.verifies.map(({ name }) => ({ name, section: 'verify', ok: true, violations: 0, sample: [] }));
  const applied = ctx.ledger.transitionText({
    runId: ctx.runId,
    unit,
    status: 'applied',
    event: 'applied',
    durationMs: 'since-start',
    verifyChecks: unit.verifies.map(({ name, sql }) => ({ name, sql })),
    verifyResults: checks.map(({ name, ok, violations }) => ({ name, ok, violations })),
  });
  const body = [timeoutSettings(unit.options, true), ...unit.statements.map((s) => s.sql), ...unit.verifies.map(raiseOnRows), applied].filter(Boolean);
  return { start, body, checks };
}

/**
 * The text of a message of one or more units: `/* tenantify: <unit> *\/ BEGIN; <start>;
 * COMMIT; BEGIN; <body>; COMMIT`. The start commits on its own, so the ledger shows the
 * unit running while it runs (with its own BEGIN: a COMMIT with none is warned about in the
 * server's log). Each next unit's start commits with the unit before it, which saves a
 * transaction per unit: `/* tenantify: <first> to <last>, n units *\/ BEGIN; <start 1>;
 * COMMIT; BEGIN; <body 1>; <start 2>; COMMIT; BEGIN; <body 2>; <start 3>; COMMIT; ...`.
 * The leading comment is what pg_stat_activity shows of it (it cuts the text after 1 kB).
 */
export function messageText(entries: PlanEntry[], units: UnitStatements[]): string {
  const parts: string[] = [];
  units.forEach((u, k) => {
    if (k === 0 && u.start.length > 0) parts.push('BEGIN', ...u.start, 'COMMIT');
    parts.push('BEGIN', ...u.body, ...(units[k + 1]?.start ?? []), 'COMMIT');
  });
  const first = (entries[0] as PlanEntry).unit.id;
  const label = entries.length === 1 ? first : `${first} to ${(entries[entries.length - 1] as PlanEntry).unit.id}, ${entries.length} units`;
  // Statements on lines of their own, so a trailing line comment ends before the semicolon.
  return `/* tenantify: ${label} */ ${parts.join('\n;\n')}`;
}

/** A verify query as a statement that fails when the query returns a row. */
function raiseOnRows(check: Check): string {
  let tag = '$tenantify$';
  for (let i = 0; check.sql.includes(tag); i++) tag = `$tenantify${i}$`;
  return `DO ${tag} BEGIN IF EXISTS (\n${check.sql}\n) THEN RAISE EXCEPTION 'verify failed'; END IF; END ${tag}`;
}
