/**
 * How a failed statement or a failed check reads in a message, shared by apply and rollback:
 * the file, line and column, a caret under the statement, PostgreSQL's SQLSTATE, detail and
 * hint; or each failed check with its first rows.
 */
import { excerpt, locate, StatementFailure, type ChecksFailed } from './failure.js';

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

/** A statement cancelled by our own SIGINT handler (or its backend terminated). */
export function isCancel(error: unknown): boolean {
  const code = error instanceof StatementFailure ? error.pgError.code : (error as { code?: string }).code;
  return code === '57014' || code === '57P01';
}
