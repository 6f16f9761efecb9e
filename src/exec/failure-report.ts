/**
 * How a failure reads, for apply and rollback alike: what failed (the file, line and
 * column, a caret under the statement, PostgreSQL's SQLSTATE, detail and hint; or each
 * failed check with its first rows), what stays done, and what to run next. Pure: tested
 * without a database (test/failure-report.test.ts).
 */
import { ConnectionLostError, InterruptedError, TenantifyError, UnitFailedError, ViolationsError } from '../errors.js';
import type { RollbackEntry } from '../plan/planner.js';
import type { Script, Unit } from '../plan/types.js';
import { ChecksFailed, excerpt, locate, StatementFailure } from './failure.js';
import { Interruption } from './interrupt.js';

/** The lines under "unit X failed: ...": where, the caret excerpt, and what PostgreSQL said. */
export function statementDetails(failure: StatementFailure): string[] {
  const { script, statement, pgError } = failure;
  const details: string[] = [];
  if (statement) {
    const at = locate(statement, pgError.position ? Number(pgError.position) : undefined);
    details.push(`at ${script.file}:${at.line}:${at.column}`, ...excerpt(at));
  } else {
    details.push(`in ${script.file}`);
  }
  details.push(`${pgError.message}${pgError.code ? ` (SQLSTATE ${pgError.code})` : ''}`);
  if (pgError.detail) details.push(`detail: ${pgError.detail}`);
  if (pgError.hint) details.push(`postgres hint: ${pgError.hint}`);
  if (pgError.where) details.push(`where: ${pgError.where.split('\n')[0]}`);
  return details;
}

/** Each failed check: how many rows, then the first few. */
export function violationDetails(failed: ChecksFailed): string[] {
  const details: string[] = [];
  for (const r of failed.results.filter((c) => !c.ok)) {
    details.push(`${failed.section} "${r.name}": ${r.violations} row${r.violations === 1 ? '' : 's'}`);
    for (const row of r.sample) details.push(`    ${JSON.stringify(row)}`);
    if (r.violations > r.sample.length) details.push(`    ... and ${r.violations - r.sample.length} more`);
  }
  return details;
}

/** Our own stop at a safe point, or a statement cancelled by our SIGINT handler (or its backend terminated). */
export function isCancel(error: unknown): boolean {
  if (error instanceof Interruption) return true;
  const code = error instanceof StatementFailure ? error.pgError.code : (error as { code?: string }).code;
  return code === '57014' || code === '57P01';
}

/**
 * The connection went away (the server restarted or stopped, or the backend was
 * terminated): the server rolled back the open transaction, and nothing could be written
 * to the ledger after it. Not a cancel of ours: our own cancel gives 57014. Classified by
 * what is known for sure, not by wording: the session's connection is gone (`session.lost`,
 * whatever the driver or the server said), or the error's class (SQLSTATE class 08,
 * 57P01..57P03, a socket's errno). The driver's own messages are the last resort of a caller
 * with no session at hand.
 */
export function isConnectionLost(error: unknown, session?: { lost: Error | undefined }): boolean {
  if (error instanceof ConnectionLostError) return true;
  if (session?.lost !== undefined) return true;
  const e = (error instanceof StatementFailure ? error.pgError : error) as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  // Class 08: connection exception; 57P01..57P03: admin or crash shutdown, cannot connect now.
  if (code.startsWith('08') || ['57P01', '57P02', '57P03', 'ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT'].includes(code)) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|is not queryable|server closed the connection unexpectedly/i.test(message);
}

/**
 * Lost the connection while applying or reverting a unit (`unitId`; undefined: between
 * units). The ledger cannot be written on a dead connection, so it says what it said
 * before: the unit `running` (apply) or its state before the revert.
 */
export function connectionLost(
  error: unknown,
  at: { unitId: string; direction: 'apply' | 'revert'; partial: boolean } | undefined,
): ConnectionLostError {
  if (error instanceof ConnectionLostError) return error;
  const why = firstLine(messageOf(error));
  if (!at) {
    return new ConnectionLostError(`lost the connection to PostgreSQL: ${why}`, {
      code: 'connection-lost',
      hint: 'the server rolled back what was open; once it is back, run the same command again: the ledger says what is done, and the next run records this one as died',
    });
  }
  const rolledBack = at.partial
    ? 'the server rolled back the work in flight; what committed before it (statements or batches) stays done and its progress is recorded'
    : "the server rolled back the unit's transaction";
  if (at.direction === 'revert') {
    return new ConnectionLostError(`lost the connection to PostgreSQL while reverting ${at.unitId}: ${why}`, {
      code: 'connection-lost',
      hint: `${rolledBack}; the ledger could not be written after it: ${at.unitId} keeps its state there. Once the server is back, \`tenantify rollback\` goes on`,
    });
  }
  return new ConnectionLostError(`lost the connection to PostgreSQL while applying ${at.unitId}: ${why}`, {
    code: 'connection-lost',
    hint: `${rolledBack}; the ledger could not be written after it: ${at.unitId} stays \`running\` there. Once the server is back, \`tenantify apply\` records this run as died and resumes ${at.unitId}`,
  });
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

/**
 * A unit's apply failed (`signal`: the run was interrupted, and this is how it stopped;
 * `dryRun`: in a dry run, where nothing stays and nothing is recorded, whatever the kind).
 */
export function applyFailure(unit: Unit, error: unknown, signal: string | undefined, dryRun = false): TenantifyError {
  if (signal !== undefined) return interruptedAt(signal, unit.id, !unit.options.transaction || Boolean(unit.options.batch));
  if (dryRun) return dryRunFailure(unit, error);
  if (error instanceof ChecksFailed) {
    const what =
      error.section === 'precheck'
        ? 'the unit was not applied'
        : unit.options.transaction && !unit.options.batch
          ? 'the unit was rolled back'
          : 'its work stays done (it ran outside one transaction); revert it with its rollback or fix the data';
    const retry =
      error.section === 'verify' && !unit.options.transaction
        ? `its statements stay done (it ran outside one transaction); the ledger records the violations. Fix the data, or edit ${unit.file}: the next \`tenantify apply\` runs again its statements from the first one you changed (none changed: only the verify)`
        : `${what}; the ledger records the violations. Fix the data or the unit, then run \`tenantify apply\` again`;
    return new ViolationsError(`unit ${unit.id}: ${error.section} failed`, { details: violationDetails(error), hint: retry });
  }
  if (error instanceof StatementFailure) {
    const partial = !unit.options.transaction
      ? 'it runs outside a transaction: the statements before this one stay done, and `tenantify apply` resumes at this one'
      : unit.options.batch
        ? 'the failed batch was rolled back; the batches before it stay committed and `tenantify apply` resumes after them'
        : 'it was rolled back whole';
    return new UnitFailedError(`unit ${unit.id} failed: ${error.pgError.message}`, {
      details: statementDetails(error),
      hint: `${partial}; the ledger records the error. Fix the unit and run \`tenantify apply\` again`,
    });
  }
  // An expected failure (a snapshot that could not be taken...) keeps its code and hint.
  const known = error instanceof TenantifyError ? error : undefined;
  return new UnitFailedError(`unit ${unit.id} failed: ${messageOf(error)}`, {
    code: known?.code,
    hint: known?.hint ?? 'it was rolled back and the ledger records why; fix it and run `tenantify apply` again',
    cause: error,
  });
}

/** A dry run's unit failed: its work went with the dry run's transaction, batches included, and the ledger was not written. */
function dryRunFailure(unit: Unit, error: unknown): TenantifyError {
  const hint =
    'a dry run: nothing stays (its work, batches included, was rolled back with the dry run) and the ledger records nothing. Fix the data or the unit, then run `tenantify apply --dry-run` again';
  if (error instanceof ChecksFailed)
    return new ViolationsError(`unit ${unit.id}: ${error.section} failed`, { details: violationDetails(error), hint });
  if (error instanceof StatementFailure)
    return new UnitFailedError(`unit ${unit.id} failed: ${error.pgError.message}`, { details: statementDetails(error), hint });
  return new UnitFailedError(`unit ${unit.id} failed: ${messageOf(error)}`, { hint, cause: error });
}

/** The run stopped at a unit; `partial`: the unit commits as it goes (statements, batches). */
export function interruptedAt(signal: string, unitId: string, partial = false): InterruptedError {
  return new InterruptedError(
    `interrupted by ${signal} at ${unitId}: ${partial ? 'the work in flight was finished or rolled back and its progress recorded' : 'its transaction was rolled back'}`,
    { code: 'interrupted', hint: 'run `tenantify apply` again to resume where it stopped' },
  );
}

/** A unit's revert failed: the unit keeps its state. */
export function revertFailure(entry: RollbackEntry, script: Script, error: unknown, signal: string | undefined): TenantifyError {
  const { unit } = entry;
  const stays = `${unit.id} stays ${entry.ledger.status}`;
  if (signal !== undefined) {
    const what = script.options.transaction
      ? 'its rollback was rolled back'
      : 'the statement in flight was cancelled; the ones before it stay done';
    return new InterruptedError(`interrupted by ${signal} while reverting ${unit.id}: ${what}`, {
      code: 'interrupted',
      hint: `${stays}; run \`tenantify rollback\` again to go on`,
    });
  }
  const whatStays =
    error instanceof ChecksFailed && error.section === 'precheck'
      ? 'the rollback did not start'
      : script.options.transaction
        ? "the rollback's transaction was rolled back whole"
        : 'the rollback runs outside a transaction: the statements before the failing one stay done, and `tenantify rollback` resumes at it';
  const hint = `${whatStays}; ${stays} and the ledger records the error (event rollback_failed); older units were not reverted. Fix ${script.file} or the data, then run \`tenantify rollback\` again`;
  if (error instanceof ChecksFailed)
    return new ViolationsError(`rollback of ${unit.id}: ${error.section} failed`, { details: violationDetails(error), hint });
  if (error instanceof StatementFailure)
    return new UnitFailedError(`rollback of ${unit.id} failed: ${error.pgError.message}`, { details: statementDetails(error), hint });
  return new UnitFailedError(`rollback of ${unit.id} failed: ${messageOf(error)}`, { hint, cause: error });
}

/** The run stopped between two reverts. */
export function interruptedBeforeRevert(signal: string, unitId: string, command: string): InterruptedError {
  return new InterruptedError(`interrupted by ${signal} before reverting ${unitId}: the units before it were reverted`, {
    code: 'interrupted',
    hint: `run \`${command}\` again to go on`,
  });
}

function messageOf(error: unknown): string {
  return (error as Error).message ?? String(error);
}
