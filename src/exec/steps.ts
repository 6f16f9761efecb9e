/** Small steps the lifecycle and the runners share: transaction bounds, timeouts, one statement, checks, retries. */
import { cancelAutovacuum } from './autovacuum.js';
import { pick, runChecks } from './checks.js';
import { defaultThrottle, unitThrottle } from './throttle.js';
import { ChecksFailed, StatementFailure, type PgErrorFields } from './failure.js';
import type { CheckResult } from './failure.js';
import type { ExecContext } from './context.js';
import type { UnitContext } from '../plan/define.js';
import type { Script, Statement, Unit, UnitOptions } from '../plan/types.js';

const savepoint = 'tenantify_unit';

/** The statements that open, commit and roll back a unit's transaction: a savepoint inside a dry run's outer transaction. */
export function transactionBounds(dryRun: boolean): { begin: string; commit: string; rollback: string } {
  return dryRun
    ? { begin: `SAVEPOINT ${savepoint}`, commit: `RELEASE SAVEPOINT ${savepoint}`, rollback: `ROLLBACK TO SAVEPOINT ${savepoint}` }
    : { begin: 'BEGIN', commit: 'COMMIT', rollback: 'ROLLBACK' };
}

/** BEGIN (a savepoint inside a dry run's outer transaction) and the unit's SET LOCAL timeouts. */
export async function begin(ctx: ExecContext, options: UnitOptions): Promise<void> {
  const timeouts = timeoutSettings(options, true);
  await ctx.session.client.query(`${transactionBounds(ctx.dryRun).begin}${timeouts ? `; ${timeouts}` : ''}`);
}

export async function commit(ctx: ExecContext): Promise<void> {
  await ctx.session.client.query(transactionBounds(ctx.dryRun).commit);
}

export async function rollback(ctx: ExecContext): Promise<void> {
  await ctx.session.client.query(transactionBounds(ctx.dryRun).rollback).catch(() => {});
}

/** Runs `fn` in the unit's transaction: committed when it returns, rolled back when it throws. */
export async function inTransaction<T>(ctx: ExecContext, options: UnitOptions, fn: () => Promise<T>): Promise<T> {
  await begin(ctx, options);
  try {
    const result = await fn();
    await commit(ctx);
    return result;
  } catch (error) {
    await rollback(ctx);
    throw error;
  }
}

/**
 * `SET [LOCAL] lock_timeout = ...; SET [LOCAL] statement_timeout = ...` (and, for a unit with
 * `triggers off`, `session_replication_role = replica`), or '' when the unit sets none.
 */
export function timeoutSettings(options: UnitOptions, local: boolean): string {
  const set = local ? 'SET LOCAL' : 'SET';
  const parts: string[] = [];
  if (options.triggersOff) parts.push(`${set} session_replication_role = replica`);
  if (options.lockTimeoutMs !== undefined) parts.push(`${set} lock_timeout = ${options.lockTimeoutMs}`);
  if (options.statementTimeoutMs !== undefined) parts.push(`${set} statement_timeout = ${options.statementTimeoutMs}`);
  return parts.join('; ');
}

/** The script's precheck or verify queries; any that returns rows fails them all (ChecksFailed). */
export async function check(ctx: ExecContext, script: Script, section: 'precheck' | 'verify'): Promise<CheckResult[]> {
  const throttle = unitThrottle(ctx.batching?.throttle ?? defaultThrottle, script.options.throttle);
  const pacing = { throttle, stopIfAsked: () => ctx.interrupt.throwIfRequested() };
  const checks = await runChecks(ctx.session, section === 'precheck' ? script.prechecks : script.verifies, section, script, pacing);
  if (checks.some((c) => !c.ok)) throw new ChecksFailed(section, checks);
  return checks;
}

export async function runStatement(ctx: ExecContext, script: Script, statement: Statement, params?: unknown[]): Promise<number> {
  try {
    const result = await ctx.session.client.query(statement.sql, params);
    return result.rowCount ?? 0;
  } catch (error) {
    throw asStatementFailure(error, script, statement);
  }
}

export function asStatementFailure(error: unknown, script: Script, statement: Statement | undefined): unknown {
  if (error instanceof StatementFailure) return error;
  const e = error as PgErrorFields;
  return typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? new StatementFailure(script, statement, pick(e)) : error;
}

/** SQLSTATEs worth another try after a pause: lock_not_available, deadlock_detected, serialization_failure. */
const lockNotAvailable = '55P03';
const retryable = new Set([lockNotAvailable, '40P01', '40001']);

export function isRetryable(error: unknown): boolean {
  return error instanceof StatementFailure && retryable.has(error.pgError.code ?? '');
}

/** Runs `attempt` again after a growing pause while it fails on a lock, up to the unit's retries. */
export async function retrying<T>(ctx: ExecContext, script: Script, attempt: () => Promise<T>): Promise<T> {
  for (let tries = 0; ; tries++) {
    try {
      return await attempt();
    } catch (error) {
      if (!isRetryable(error) || tries >= script.options.retries || ctx.interrupt.requested) throw error;
      const pause = Math.min(250 * 2 ** tries, 8000) * (0.75 + Math.random() * 0.5);
      const reason = (error as StatementFailure).pgError.message;
      if ((error as StatementFailure).pgError.code === lockNotAvailable) await cancelAutovacuum(ctx, script.id);
      ctx.reporter.note(`${script.id}: ${reason}; retry ${tries + 1} of ${script.options.retries} in ${Math.round(pause)} ms`);
      if (!ctx.dryRun) await ctx.ledger.event(ctx.runId, script.id, 'retry', { attempt: tries + 1, reason, pauseMs: Math.round(pause) });
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

/** While `fn` runs, a first SIGINT cancels the statement in flight. */
export async function cancellable<T>(ctx: ExecContext, fn: () => Promise<T>): Promise<T> {
  return ctx.interrupt.during(ctx.session, () => cancelBackend(ctx, ctx.session.backendPid), fn);
}

async function cancelBackend(ctx: ExecContext, pid: number | undefined): Promise<void> {
  const { connect } = await import('../db/connection.js');
  const other = await connect(ctx.session.url, 'cancel');
  try {
    await other.client.query('SELECT pg_cancel_backend($1)', [pid]);
  } finally {
    await other.close();
  }
}

/** What a TypeScript unit's functions get: its id, a log that goes to the run's notes, its session, other sessions, its progress. */
export function unitContext(ctx: ExecContext, unitId: string, unit?: Unit): UnitContext {
  return {
    unitId,
    log: (message) => ctx.reporter.note(`${unitId}: ${message}`),
    client: ctx.session.client,
    async connect(purpose) {
      const { connect } = await import('../db/connection.js');
      const session = await connect(ctx.session.url, purpose);
      return {
        client: session.client,
        close: () => session.close(),
        run: (fn) => {
          ctx.interrupt.throwIfRequested();
          return ctx.interrupt.during(session, () => cancelBackend(ctx, session.backendPid), fn);
        },
      };
    },
    progress: (progress) => {
      if (unit) ctx.reporter.unitProgress(unit, progress);
    },
  };
}
