/**
 * One error family. Every expected failure is a TenantifyError with an exit code from the
 * contract and a hint that tells the reader what to do next. Anything else that reaches the
 * CLI is a bug and is printed with its stack.
 */

export const ExitCode = {
  ok: 0,
  unitFailed: 1,
  usage: 2,
  violations: 3,
  locked: 4,
  drift: 5,
  interrupted: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * A stable name for the cause, in kebab case (`plan-dir-not-found`, `lock-held`, `drift`):
 * what callers, `--json` readers and tests match on, never the wording of the message.
 * Each class has a default (below); a throw site with a more precise cause names it.
 */
export type ErrorCode = string;

/** The code of an error that names none, from its exit code. */
const codeOfExit: Record<ExitCodeValue, ErrorCode> = {
  0: 'ok',
  1: 'unit-failed',
  2: 'usage',
  3: 'violations',
  4: 'lock-held',
  5: 'drift',
  130: 'interrupted',
};

/** What every error of the family takes beside its message. */
export interface ErrorOptions {
  /** The cause's stable code; the class's default when omitted. */
  code?: ErrorCode | undefined;
  /** What to do next, for the one who reads it. */
  hint?: string | undefined;
  /** Extra lines shown under the message (a caret excerpt, a list of violations...). */
  details?: string[] | undefined;
  cause?: unknown;
}

/** The base of the family: an expected failure, with the exit code of the contract. */
export class TenantifyError extends Error {
  readonly exitCode: ExitCodeValue;
  /** The cause's stable code (see ErrorCode). */
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  /** Extra lines shown under the message (a caret excerpt, a list of violations...). */
  readonly details: string[];

  constructor(message: string, options: ErrorOptions & { exitCode: ExitCodeValue; defaultCode?: ErrorCode }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.exitCode = options.exitCode;
    this.code = options.code ?? options.defaultCode ?? codeOfExit[options.exitCode];
    this.hint = options.hint;
    this.details = options.details ?? [];
  }
}

/** Bad arguments, configuration or plan: nothing was touched. Exit 2. */
export class UsageError extends TenantifyError {
  constructor(message: string, options: ErrorOptions = {}) {
    super(message, { ...options, defaultCode: 'usage', exitCode: ExitCode.usage });
  }
}

/** What a PlanError takes beside its message: the file it is about, always, and the line when known. */
export interface PlanErrorOptions extends ErrorOptions {
  /** The plan file the problem is in, as the message names it. */
  file: string;
  /** The 1-based line in that file, when the problem has one. */
  line?: number | undefined;
}

/** A plan file problem, always with the file and line. Exit 2. */
export class PlanError extends TenantifyError {
  readonly file: string;
  readonly line: number | undefined;

  constructor(message: string, options: PlanErrorOptions) {
    const { file, line, ...rest } = options;
    super(`${line === undefined ? file : `${file}:${line}`}: ${message}`, {
      ...rest,
      defaultCode: 'plan-invalid',
      exitCode: ExitCode.usage,
    });
    this.file = file;
    this.line = line;
  }
}

/**
 * Several plan errors at once, so a DBA fixes them in one pass. Exit 2. It takes the list
 * alone, not the family's (message, options): its message, hint and details are made from
 * the errors it holds (one error is shown as itself; several under a count, each with its hint).
 */
export class PlanErrors extends TenantifyError {
  readonly errors: PlanError[];

  constructor(errors: PlanError[]) {
    const first = errors[0];
    const alone = errors.length === 1 ? first : undefined;
    super(alone ? alone.message : `the plan has ${errors.length} errors`, {
      code: first?.code ?? 'plan-invalid',
      exitCode: ExitCode.usage,
      hint: alone?.hint ?? 'fix the files named above; nothing was run and the database was not touched',
      // Each error keeps its own hint, under it.
      details: alone ? alone.details : errors.flatMap((e) => (e.hint ? [e.message, `  hint: ${e.hint}`] : [e.message])),
    });
    this.errors = errors;
  }
}

/** A unit failed and was rolled back; the ledger records why. Exit 1. */
export class UnitFailedError extends TenantifyError {
  constructor(message: string, options: ErrorOptions = {}) {
    super(message, { ...options, defaultCode: 'unit-failed', exitCode: ExitCode.unitFailed });
  }
}

/** A precheck or verify query returned rows. Exit 3. */
export class ViolationsError extends TenantifyError {
  constructor(message: string, options: ErrorOptions = {}) {
    super(message, { ...options, defaultCode: 'violations', exitCode: ExitCode.violations });
  }
}

/** Another run holds the run lock (the holder is named): nothing was done. Exit 4. */
export class LockHeldError extends TenantifyError {
  constructor(message: string, options: ErrorOptions = {}) {
    super(message, { ...options, defaultCode: 'lock-held', exitCode: ExitCode.locked });
  }
}

/** An applied unit (or a partly run rollback) changed since it ran: nothing was run. Exit 5. */
export class DriftError extends TenantifyError {
  constructor(message: string, options: ErrorOptions = {}) {
    super(message, { ...options, defaultCode: 'drift', exitCode: ExitCode.drift });
  }
}

/**
 * The connection to PostgreSQL was lost mid-run (the server restarted or stopped, the
 * backend was terminated): the server rolled back what was open, the ledger could not be
 * told, and the next run records the dead run and resumes. Exit 1.
 */
export class ConnectionLostError extends TenantifyError {
  constructor(message: string, options: ErrorOptions = {}) {
    super(message, { ...options, defaultCode: 'connection-lost', exitCode: ExitCode.unitFailed });
  }
}

/** SIGINT or SIGTERM stopped the run at a safe point; the ledger says where, and the same command resumes. Exit 130. */
export class InterruptedError extends TenantifyError {
  constructor(message: string, options: ErrorOptions = {}) {
    super(message, { ...options, defaultCode: 'interrupted', exitCode: ExitCode.interrupted });
  }
}

/** True for an expected failure of the family (anything else reaching the CLI is a bug). */
export function isTenantifyError(error: unknown): error is TenantifyError {
  return error instanceof TenantifyError;
}
