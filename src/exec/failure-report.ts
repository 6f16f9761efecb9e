/**
 * How a failure reads, for apply and rollback alike: what failed (the file, line and
 * column, a caret under the statement, PostgreSQL's SQLSTATE, detail and hint; or each
 * failed check with its first rows), what stays done, and what to run next. Pure: tested
 * without a database (test/failure-report.test.ts).
 */
import { InterruptedError, UnitFailedError, ViolationsError, type TenantifyError } from '../errors.js';
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

/** A unit's apply failed (`signal`: the run was interrupted, and this is how it stopped). */
export function applyFailure(unit: Unit, error: unknown, signal: string | undefined): TenantifyError {
  if (signal !== undefined) return interruptedAt(signal, unit.id, !unit.options.transaction || Boolean(unit.options.batch));
  if (error instanceof ChecksFailed) {
    const what =
      error.section === 'precheck'
        ? 'the unit was not applied'
        : unit.options.transaction && !unit.options.batch
          ? 'the unit was rolled back'
          : 'its work stays done (it ran outside one transaction); revert it with its rollback or fix the data';
    return new ViolationsError(`unit ${unit.id}: ${error.section} failed`, {
      details: violationDetails(error),
      hint: `${what}; the ledger records the violations. Fix the data or the unit, then run \`tenantify apply\` again`,
    });
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
  return new UnitFailedError(`unit ${unit.id} failed: ${messageOf(error)}`, {
    hint: 'it was rolled back and the ledger records why; fix it and run `tenantify apply` again',
    cause: error,
  });
}

/** The run stopped at a unit; `partial`: the unit commits as it goes (statements, batches). */
export function interruptedAt(signal: string, unitId: string, partial = false): InterruptedError {
  return new InterruptedError(
    `interrupted by ${signal} at ${unitId}: ${partial ? 'the work in flight was finished or rolled back and its progress recorded' : 'its transaction was rolled back'}`,
    { hint: 'run `tenantify apply` again to resume where it stopped' },
  );
}

/** A unit's revert failed: the unit keeps its state. */
export function revertFailure(entry: RollbackEntry, script: Script, error: unknown, signal: string | undefined): TenantifyError {
  const { unit } = entry;
  const stays = `${unit.id} stays ${entry.ledger.status}`;
  if (signal !== undefined) {
    const what = script.options.transaction ? 'its rollback was rolled back' : 'the statement in flight was cancelled; the ones before it stay done';
    return new InterruptedError(`interrupted by ${signal} while reverting ${unit.id}: ${what}`, { hint: `${stays}; run \`tenantify rollback\` again to go on` });
  }
  const whatStays =
    error instanceof ChecksFailed && error.section === 'precheck'
      ? 'the rollback did not start'
      : script.options.transaction
        ? "the rollback's transaction was rolled back whole"
        : 'the rollback runs outside a transaction: the statements before the failing one stay done, and `tenantify rollback` resumes at it';
  const hint = `${whatStays}; ${stays} and the ledger records the error (event rollback_failed); older units were not reverted. Fix ${script.file} or the data, then run \`tenantify rollback\` again`;
  if (error instanceof ChecksFailed) return new ViolationsError(`rollback of ${unit.id}: ${error.section} failed`, { details: violationDetails(error), hint });
  if (error instanceof StatementFailure) return new UnitFailedError(`rollback of ${unit.id} failed: ${error.pgError.message}`, { details: statementDetails(error), hint });
  return new UnitFailedError(`rollback of ${unit.id} failed: ${messageOf(error)}`, { hint, cause: error });
}

/** The run stopped between two reverts. */
export function interruptedBeforeRevert(signal: string, unitId: string, command: string): InterruptedError {
  return new InterruptedError(`interrupted by ${signal} before reverting ${unitId}: the units before it were reverted`, { hint: `run \`${command}\` again to go on` });
}

function messageOf(error: unknown): string {
  return (error as Error).message ?? String(error);
}
