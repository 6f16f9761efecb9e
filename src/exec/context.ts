/** What every unit runner gets. */
import type { Session } from '../db/connection.js';
import type { Ledger, UnitProgress } from '../db/ledger.js';
import type { PlanEntry } from '../plan/planner.js';
import type { Unit } from '../plan/types.js';
import type { CheckResult } from './failure.js';
import type { Interrupt } from './interrupt.js';
import type { SnapshotTaker } from '../db/snapshot.js';

export interface Reporter {
  unitStarted(entry: PlanEntry): void;
  unitProgress(unit: Unit, progress: UnitProgress): void;
  unitDone(unit: Unit, outcome: { durationMs: number; checks: CheckResult[]; note?: string }): void;
  unitFailed(unit: Unit, message: string): void;
  note(text: string): void;
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
}

export interface UnitOutcome {
  checks: CheckResult[];
  note?: string;
}

/** One module per kind of unit, each with this shape. */
export interface UnitRunner {
  /** `messageFailed`: the message that carried the unit failed already: go statement by statement. */
  run(ctx: ExecContext, entry: PlanEntry, startedAt: number, messageFailed?: boolean): Promise<UnitOutcome>;
}
