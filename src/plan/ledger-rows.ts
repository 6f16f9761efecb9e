/**
 * The ledger's record of a unit, as the planner reads it: db/ledger.ts stores and reads these
 * rows; the planner decides from them (what resumes where, what a rollback reverts) without
 * the database.
 */
import type { DoneDigest } from './done-statements.js';
import type { UnitKind, UnitStatus } from './types.js';

export interface UnitProgress {
  /** Non-transactional units: hashes of the statements done, in order. */
  statements?: string[];
  /** Non-transactional units too large to hold their statements: how many are done, and a digest of their hashes (done-statements.ts). */
  statementsDone?: DoneDigest;
  /** Batched units of older ledgers: the last key done (exclusive lower bound of the next batch). */
  cursor?: string;
  /** Batched units: the key ranges their workers walk, each with its last key done. */
  segments?: { from: string; to: string | null; cursor: string }[];
  rowsDone?: number;
  rowsTotal?: number;
  batches?: number;
  rowsPerSecond?: number;
  /** Batched units, while the throttle slows them down: why (shown on the progress line, not kept). */
  throttled?: string;
  /** A rollback that runs outside a transaction: hashes of its statements done, in order. */
  revertStatements?: string[];
  /** The same, for a rollback too large to hold its statements. */
  revertStatementsDone?: DoneDigest;
}

export interface LedgerUnit {
  id: string;
  kind: UnitKind;
  file: string;
  status: UnitStatus;
  checksum: string;
  /** What the unit runs, without comments or layout (plan/fingerprint.ts); null in rows written before ledger version 2. */
  fingerprint?: string | null | undefined;
  runId: number | null;
  startedAt: Date | null;
  appliedAt: Date | null;
  durationMs: number | null;
  progress: UnitProgress;
  verifyChecks: { name: string; sql: string }[];
  verifyResults: unknown;
  snapshot: unknown;
  error: LedgerError | null;
  updatedAt: Date;
}

export interface LedgerError {
  message: string;
  code?: string;
  sqlstate?: string;
  detail?: string;
  hint?: string;
  file?: string;
  line?: number;
  column?: number;
  statement?: string;
  violations?: unknown;
}
