/**
 * A failed statement, told the way a DBA can act on: the file, the line and column, the
 * statement's line with a caret, and PostgreSQL's SQLSTATE, detail and hint.
 */
import type { LedgerError } from '../db/ledger.js';
import { TenantifyError } from '../errors.js';
import type { Check, Script, Statement } from '../plan/types.js';

export interface PgErrorFields {
  message: string;
  code?: string;
  detail?: string;
  hint?: string;
  position?: string;
  where?: string;
}

export class StatementFailure extends Error {
  constructor(
    readonly script: Script,
    readonly statement: Statement | undefined,
    readonly pgError: PgErrorFields,
  ) {
    super(pgError.message);
  }
}

/** Raised when a precheck or verify returns rows. */
export class ChecksFailed extends Error {
  constructor(
    readonly section: 'precheck' | 'verify',
    readonly results: CheckResult[],
  ) {
    super(
      `${section} failed: ${results
        .filter((r) => !r.ok)
        .map((r) => `"${r.name}"`)
        .join(', ')}`,
    );
  }
}

export interface CheckResult {
  name: string;
  section: 'precheck' | 'verify';
  ok: boolean;
  /** Rows returned in all (the violations). */
  violations: number;
  /** The first few, as JSON objects. */
  sample: Record<string, unknown>[];
  /** Absent when the check ran inside a unit sent as one message (not timed one by one). */
  durationMs?: number;
  /** When the query itself failed. */
  error?: string;
}

export interface Location {
  line: number;
  column: number;
  text: string;
  caret: number;
}

/** Where in the file PostgreSQL's 1-based error position falls. */
export function locate(statement: Statement, position: number | undefined): Location {
  const lines = statement.sql.split('\n');
  if (!position || position < 1) return { line: statement.line, column: statement.column, text: lines[0] ?? '', caret: 0 };
  const before = statement.sql.slice(0, position - 1);
  const index = before.split('\n').length - 1;
  const caret = before.length - (before.lastIndexOf('\n') + 1);
  return {
    line: statement.line + index,
    column: index === 0 ? statement.column + caret : caret + 1,
    text: lines[index] ?? '',
    caret,
  };
}

export function excerpt(location: Location): string[] {
  const gutter = String(location.line);
  return [`${gutter} | ${location.text}`, `${' '.repeat(gutter.length)} | ${' '.repeat(location.caret)}^`];
}

export function toLedgerError(error: unknown): LedgerError {
  if (error instanceof StatementFailure) {
    const { script, statement, pgError } = error;
    const at = statement ? locate(statement, pgError.position ? Number(pgError.position) : undefined) : undefined;
    return omitUndefined({
      message: pgError.message,
      sqlstate: pgError.code,
      detail: pgError.detail,
      hint: pgError.hint,
      file: script.file,
      line: at?.line,
      column: at?.column,
      statement: statement?.sql.slice(0, 2000),
    });
  }
  if (error instanceof ChecksFailed) {
    return {
      message: error.message,
      code: `${error.section}_failed`,
      violations: error.results
        .filter((r) => !r.ok)
        .map(({ name, violations, sample, error: e }) => omitUndefined({ name, violations, sample, error: e })),
    };
  }
  if (error instanceof TenantifyError) return { message: error.message, code: error.code };
  const e = error as { message?: string; code?: string };
  return omitUndefined({ message: e.message ?? String(error), sqlstate: typeof e.code === 'string' ? e.code : undefined });
}

export function describeCheck(check: Check, script: Script): string {
  return check.line > 0 ? `${script.file}:${check.line}` : script.file;
}

function omitUndefined<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
