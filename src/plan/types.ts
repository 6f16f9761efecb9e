/** What the loader reads from a plan directory. Pure data (and how units are ordered): no I/O hangs off these. */
import type { UnitDefinition } from './define.js';

export type UnitKind = 'migration' | 'backfill';
export type UnitStatus = 'pending' | 'running' | 'applied' | 'failed' | 'rolled_back';

export type SnapshotScope =
  | { kind: 'default'; line?: number | undefined }
  | { kind: 'none'; line?: number | undefined }
  | { kind: 'schema'; line?: number | undefined }
  | { kind: 'full'; line?: number | undefined }
  /** `line`: the directive's, so a table found missing at run time (or a scope the server refuses) is shown where it was named. */
  | { kind: 'tables'; tables: string[]; line?: number | undefined };

export interface BatchDirective {
  table: string;
  key: string;
  size: number;
}

/**
 * How a batched backfill yields to the application (src/exec/throttle.ts): the plan's
 * `batch.throttle`, and a unit's `-- tenantify:throttle` over it.
 */
export interface ThrottleSettings {
  /** Off: batches follow their target duration only (and still back off on lock waits and replica lag). */
  enabled: boolean;
  /** The probe query's latency limit in ms; undefined: 4x its latency before the first batch, at least 5 ms. */
  probeLimitMs: number | undefined;
  /** The share of wall time a worker spends in batches, above 0 and at most 1 (1: no pause). */
  duty: number;
  /** The longest pause the throttle puts between two batches. */
  maxPauseMs: number;
}

export interface UnitOptions {
  transaction: boolean;
  snapshot: SnapshotScope;
  lockTimeoutMs: number | undefined;
  statementTimeoutMs: number | undefined;
  retries: number;
  batch: BatchDirective | undefined;
  /**
   * `-- tenantify:triggers off`: the unit's sessions run with session_replication_role =
   * replica, so the application's ordinary triggers (an updated_at stamp, an audit row) and
   * foreign key checks do not fire for its writes; the app's own sessions still fire them.
   */
  triggersOff?: boolean;
  /** `-- tenantify:throttle ...`: the unit's own throttle settings, over the plan's (batched units). */
  throttle?: Partial<ThrottleSettings>;
  /** `-- tenantify:allow <rule> <why>`: lint findings of that rule in this file are accepted, for the reason given. */
  allow?: LintAllow[];
}

export interface LintAllow {
  rule: string;
  reason: string;
  line: number;
}

export interface Statement {
  /** The statement's text, from its first token (leading comments removed). */
  sql: string;
  /** 1-based line and column of its first token in the file. */
  line: number;
  column: number;
  /** sha256 of the text: a non-transactional unit's progress is a list of these. */
  hash: string;
  /** CREATE INDEX: the index, so an INVALID one left by a killed build is rebuilt. */
  createsIndex?: { schema: string | undefined; name: string } | undefined;
}

/**
 * A script's statements: a list in memory, or, for a unit too large to hold them (sql-unit.ts's
 * `readSqlUnit`), read again from its file each time they are walked, a piece at a time.
 */
export type Statements = Statement[] | StatementStream;

export interface StatementStream extends Iterable<Statement> {
  readonly streamed: true;
  readonly length: number;
}

export function isStreamed(statements: Statements): statements is StatementStream {
  return !Array.isArray(statements);
}

/** The first `count` statements (fewer when there are fewer), without walking the rest. */
export function firstStatements(statements: Statements, count: number): Statement[] {
  if (!isStreamed(statements)) return statements.slice(0, count);
  const first: Statement[] = [];
  if (count <= 0) return first;
  for (const statement of statements) {
    first.push(statement);
    if (first.length >= count) break;
  }
  return first;
}

export interface Check {
  section: 'precheck' | 'verify';
  name: string;
  sql: string;
  line: number;
  /**
   * A precheck in ranges (`-- tenantify:ranges <table> key=<column> size=N` under its marker):
   * run once per range of the table's key, `$1` exclusive and `$2` inclusive, each its own short
   * query, with the throttle's pause after it (exec/checks.ts).
   */
  ranges?: BatchDirective;
}

/** Common to a unit and a rollback. */
export interface Script {
  id: string;
  /** Relative to the plan directory, with forward slashes. */
  file: string;
  absolutePath: string;
  format: 'sql' | 'ts';
  checksum: string;
  /**
   * sha256 of what the unit runs (its directives and its statements' parse trees without
   * locations): an edit of comments, whitespace, line endings or a BOM leaves it as it was.
   * TypeScript units: their checksum.
   */
  fingerprint?: string | undefined;
  options: UnitOptions;
  /** SQL units: the body's statements. Empty for TypeScript units. */
  statements: Statements;
  prechecks: Check[];
  verifies: Check[];
  /** Existing tables the body writes (from the parse tree), for the default snapshot. */
  writes: string[];
  /** TypeScript units: the loaded definition. */
  definition: UnitDefinition | undefined;
}

export interface Unit extends Script {
  prefix: bigint;
  /** The lower-case letter after the number ('' when none): 0007a_ runs after 0007_ and before 0008_. */
  letter?: string | undefined;
  name: string;
  kind: UnitKind;
  rollback: Script | undefined;
}

export interface PlanSource {
  directory: string;
  units: Unit[];
}

/** A unit's place in the plan: its number, then its letter (none first). */
export function compareOrder(
  a: { prefix: bigint; letter?: string | undefined },
  b: { prefix: bigint; letter?: string | undefined },
): number {
  if (a.prefix !== b.prefix) return a.prefix < b.prefix ? -1 : 1;
  const [la, lb] = [a.letter ?? '', b.letter ?? ''];
  return la < lb ? -1 : la > lb ? 1 : 0;
}

/** The prefix as written in the file name, without its zeros: 7, 7a. */
export function orderLabel(unit: { prefix: bigint; letter?: string | undefined }): string {
  return `${unit.prefix}${unit.letter ?? ''}`;
}
