/** What every step and runner of src/exec gets: the run's context, and the unit's work in one direction. */
import type { Session } from '../db/connection.js';
import type { Ledger, UnitProgress } from '../db/ledger.js';
import type { PlanEntry, Resume, RollbackEntry } from '../plan/planner.js';
import type { Script, Statement, Unit } from '../plan/types.js';
import type { DoneStatements } from '../plan/done-statements.js';
import type { TenantifyError } from '../errors.js';
import type { CheckResult } from './failure.js';
import type { Interrupt } from './interrupt.js';
import type { SnapshotTaker } from '../db/snapshot-take.js';
import type { ThrottleSettings } from '../plan/types.js';

export interface Reporter {
  unitStarted(entry: PlanEntry): void;
  unitProgress(unit: Unit, progress: UnitProgress): void;
  unitDone(unit: Unit, outcome: { durationMs: number; checks: CheckResult[]; note?: string; locks?: LockHeld[] }): void;
  unitFailed(unit: Unit, message: string): void;
  note(text: string): void;
}

export interface BatchSettings {
  /** Batches aim at this duration: short, so that no row lock is held for long. */
  targetMs: number;
  /** A pause between batches, to leave room for live traffic. */
  pauseMs: number;
  /** Back off while a replica lags more than this. */
  maxReplicationLagMs: number;
  /** Workers over disjoint key ranges, each on its own connection. */
  parallel: number;
  /** Slows batches down while the application pays for them (throttle.ts). */
  throttle: ThrottleSettings;
}

export interface ExecContext {
  session: Session;
  ledger: Ledger;
  runId: number;
  /** Dry run: everything inside one outer transaction that is rolled back. */
  dryRun: boolean;
  interrupt: Interrupt;
  reporter: Reporter;
  /** Batched backfills' pacing (defaults when absent). */
  batching?: BatchSettings;
  /** Undefined with --no-snapshot (and in a dry run). */
  snapshots: SnapshotTaker | undefined;
  /** Trace each unit's locks (rehearse, dry run): units run one at a time, statement by statement (lock-trace.ts). */
  traceLocks?: boolean;
}

/** What a unit's work came to: its duration, precheck and verify results, and a note (a backfill's rows). */
export interface UnitOutcome {
  durationMs: number;
  checks: CheckResult[];
  note?: string;
  /** With traceLocks: the locks its transaction took on existing relations (none for a unit that commits as it goes). */
  locks?: LockHeld[];
}

/** How one unit's work ended, for the run's report. */
export interface UnitReport {
  id: string;
  outcome: 'applied' | 'failed' | 'interrupted' | 'not-run';
  durationMs: number;
  checks: CheckResult[];
  note?: string;
  locks?: LockHeld[];
}

/** How reverts are shown (the rollback command's view, or notes of an apply's reporter). */
export interface RevertReporter {
  revertStarted(entry: RollbackEntry): void;
  revertDone(unit: Unit, outcome: { durationMs: number; checks: CheckResult[] }): void;
  revertFailed(unit: Unit, message: string): void;
  note(text: string): void;
}

/**
 * One unit's work in one direction: applying the unit, or reverting it with its rollback
 * file. The lifecycle (lifecycle.ts) runs it; a runner (one module per kind) runs its body.
 */
export interface Work {
  /** The unit, as the ledger knows it. */
  unit: Unit;
  /** What runs: the unit itself, or its rollback file. */
  script: Script;
  /** Where an earlier attempt stopped: statements done (outside a transaction), or batches' cursors. */
  resume: Resume;
  /** The unit's progress in the ledger (an earlier attempt's statements or segments). */
  progress: UnitProgress | undefined;
  /** A message that carried the unit recorded its start: not again. */
  startRecorded: boolean;
  /** A message that carried the unit failed: it runs step by step. */
  messageFailed: boolean;
  direction: Direction;
}

/** What differs between applying and reverting: what the ledger and the reporter are told at each step. */
export interface Direction {
  name: 'apply' | 'revert';
  /** The unit starts: reported, and recorded in the ledger (unless a message recorded it). */
  start(ctx: ExecContext, work: Work): Promise<void>;
  /** After the prechecks, before the body: the snapshot of what the unit will write (apply). */
  beforeBody(ctx: ExecContext, work: Work): Promise<void>;
  /** A statement outside a transaction is done: `done`, all done so far (their hashes, or their count and digest). */
  statementDone(ctx: ExecContext, work: Work, done: DoneStatements, statement: Statement): Promise<void>;
  /** Inside the last transaction, once the verify sections passed. */
  record(ctx: ExecContext, work: Work, checks: CheckResult[], startedAt: number): Promise<void>;
  /** The same record as text, when the work can travel as one message (see transport.ts). */
  recordText?(ctx: ExecContext, work: Work, checks: CheckResult[]): string;
  /** The unit is done (committed): reported. */
  done(ctx: ExecContext, work: Work, outcome: UnitOutcome): void;
  /** The ledger learns why; returns the error the caller gets. */
  fail(ctx: ExecContext, work: Work, error: unknown): Promise<TenantifyError>;
}

/**
 * A kind of unit (pgroll's one file per operation): transactional.ts, statements.ts,
 * batched.ts, typescript.ts. The lifecycle decides the kind once (runnerFor).
 */
export interface Runner {
  name: 'transactional' | 'statements' | 'batched' | 'typescript';
  /**
   * True: the body runs inside the unit's one transaction (begin → body → verify → record →
   * commit, retried whole on a lock timeout). False: the body commits its own work
   * (statement by statement, batch by batch), then begin → verify → record → commit.
   */
  inTransaction: boolean;
  /** The unit's body; returns a note for the report (rows and batches of a backfill). */
  body(ctx: ExecContext, work: Work): Promise<string | undefined>;
}

/** A lock a unit took on an existing relation, held `heldMs` until its commit. */
export interface LockHeld {
  /** schema.name, quoted where needed. */
  relation: string;
  kind: 'table' | 'index';
  /** pg_locks' name of the mode: AccessExclusiveLock, ShareLock... */
  mode: string;
  heldMs: number;
  /** A table the unit rewrote (its file changed: ALTER COLUMN TYPE, a volatile default...): its rows after the rewrite. */
  rewroteRows?: number;
}
