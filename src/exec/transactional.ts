/** The usual unit: body, verify and ledger in one transaction. */
import { runChecks } from './checks.js';
import { ChecksFailed, type CheckResult } from './failure.js';
import { asStatementFailure, cancellable, inTransaction, retrying, runStatement, timeoutSettings } from './steps.js';
import type { DeferredStart, ExecContext, UnitOutcome, UnitRunner } from './context.js';
import type { PlanEntry } from '../plan/planner.js';
import type { Check, Unit } from '../plan/types.js';
import { unitContext } from './unit-context.js';

export const transactionalRunner: UnitRunner = {
  async run(ctx: ExecContext, entry: PlanEntry, startedAt: number, start?: DeferredStart, messageFailed = false): Promise<UnitOutcome> {
    const { unit } = entry;
    if (!messageFailed && fitsOneMessage(ctx, unit)) {
      const checks = await inOneMessage(ctx, entry, start);
      if (checks) return { checks };
    }
    await start?.settle();
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
 * The whole unit as one message, one round trip instead of one per statement: BEGIN, the
 * timeouts, the body, each verify query as a block that raises when it returns a row, the
 * ledger's `applied`, COMMIT; preceded by the unit's deferred start and a COMMIT of its own,
 * so the ledger shows the unit running while it runs. When anything in it fails, it is rolled back whole and this
 * returns undefined: the caller runs the unit again statement by statement, which places
 * the error under its line, shows the verify's rows, and retries lock timeouts. (The one
 * trace a failed first attempt leaves is what no rollback undoes, such as sequence values.)
 */
async function inOneMessage(ctx: ExecContext, entry: PlanEntry, start: DeferredStart | undefined): Promise<CheckResult[] | undefined> {
  const { text, checks } = unitMessage(ctx, entry, start);
  try {
    await cancellable(ctx, () => ctx.session.client.query(text));
    return checks;
  } catch (error) {
    await ctx.session.client.query('ROLLBACK').catch(() => {});
    if (ctx.interrupt.requested || !isServerError(error)) {
      await start?.settle().catch(() => {});
      throw error;
    }
    return undefined;
  }
}

/** An error the server sent (it has a SQLSTATE), as opposed to a lost connection or a bug. */
export function isServerError(error: unknown): boolean {
  return typeof (error as { code?: unknown }).code === 'string';
}

/** A unit as statements: its start (when it travels with the unit), its transaction's inside, and the verify results it records. */
export interface UnitStatements {
  start: string[];
  body: string[];
  checks: CheckResult[];
}

/**
 * A unit's statements for one message: the start, then inside its transaction the
 * timeouts, the body, each verify query as a block that raises when it returns a row, and
 * the ledger's `applied`.
 */
export function unitStatements(ctx: ExecContext, entry: PlanEntry, start: DeferredStart | undefined): UnitStatements {
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
  return { start: start?.statements ?? [], body, checks };
}

/**
 * The text of a unit's one message: `/* tenantify: <unit> *\/ BEGIN; <start>; COMMIT; BEGIN;
 * <body>; COMMIT`, the start committed on its own so that the ledger shows the unit running
 * while it runs. (Its own BEGIN: a COMMIT with none would be warned about in the server's log.)
 * The leading comment names the unit in pg_stat_activity, whose query text is cut after 1 kB.
 */
function unitMessage(ctx: ExecContext, entry: PlanEntry, start: DeferredStart | undefined): { text: string; checks: CheckResult[] } {
  const { start: lead, body, checks } = unitStatements(ctx, entry, start);
  const parts = [...(lead.length > 0 ? ['BEGIN', ...lead, 'COMMIT'] : []), 'BEGIN', ...body, 'COMMIT'];
  return { text: `/* tenantify: ${entry.unit.id} */ ${joinStatements(parts)}`, checks };
}

/** Statements joined on lines of their own, so a trailing line comment ends before the semicolon. */
export function joinStatements(statements: string[]): string {
  return statements.join('\n;\n');
}

/** A verify query as a statement that fails when the query returns a row. */
function raiseOnRows(check: Check): string {
  let tag = '$tenantify$';
  for (let i = 0; check.sql.includes(tag); i++) tag = `$tenantify${i}$`;
  return `DO ${tag} BEGIN IF EXISTS (\n${check.sql}\n) THEN RAISE EXCEPTION 'verify failed'; END IF; END ${tag}`;
}

/** Inside the unit's last transaction: the verify sections must pass, then the unit is applied with them. */
export async function verifyAndRecordApplied(ctx: ExecContext, entry: PlanEntry, startedAt: number): Promise<UnitOutcome['checks']> {
  const checks = await runChecks(ctx.session.client, entry.unit.verifies, 'verify', entry.unit);
  if (checks.some((c) => !c.ok)) throw new ChecksFailed('verify', checks);
  await recordApplied(ctx, entry, startedAt, checks);
  return checks;
}

/** Inside the unit's last transaction: the unit is applied, with its verify queries and results. */
export async function recordApplied(ctx: ExecContext, entry: PlanEntry, startedAt: number, checks: UnitOutcome['checks']): Promise<void> {
  const { unit } = entry;
  await ctx.ledger.transition({
    runId: ctx.runId,
    unit,
    status: 'applied',
    event: 'applied',
    durationMs: Math.round(performance.now() - startedAt),
    verifyChecks: unit.verifies.map(({ name, sql }) => ({ name, sql })),
    verifyResults: checks.map(({ name, ok, violations, durationMs }) => ({ name, ok, violations, durationMs })),
  });
}
