/**
 * What the ledger records of a unit's life, as data: the lifecycle executes these
 * transitions, and the message transport sends the same ones as text.
 */
import type { UnitTransition } from '../db/ledger.js';
import type { PlanEntry, RollbackEntry } from '../plan/planner.js';
import type { Unit } from '../plan/types.js';
import type { ExecContext } from './context.js';
import type { CheckResult } from './failure.js';

/** An apply starts: `started`, `restarted` (left running by a run that died) or `resumed` (after work done). */
export function startTransition(ctx: ExecContext, entry: PlanEntry): UnitTransition {
  const { unit } = entry;
  return {
    runId: ctx.runId,
    unit,
    status: 'running',
    event: entry.resume.kind === 'start' ? (entry.status === 'running' ? 'restarted' : 'started') : 'resumed',
    fresh: true,
    firstRecord: entry.ledger === undefined,
    ...(entry.resume.kind === 'start' ? { progress: {} } : {}),
    detail: { file: unit.file, resume: entry.resume, previousStatus: entry.status },
  };
}

/** The unit is applied, with its verify queries and results; 'since-start': its duration on the server's clock. */
export function appliedTransition(ctx: ExecContext, unit: Unit, checks: CheckResult[], durationMs: number | 'since-start'): UnitTransition {
  return {
    runId: ctx.runId,
    unit,
    status: 'applied',
    event: 'applied',
    durationMs,
    verifyChecks: unit.verifies.map(({ name, sql }) => ({ name, sql })),
    verifyResults: checks.map(({ name, ok, violations, durationMs: ms }) => ({ name, ok, violations, durationMs: ms })),
  };
}

/** The unit is rolled back; a later apply starts it afresh (no cursor or statements carried over). */
export function rolledBackTransition(ctx: ExecContext, entry: RollbackEntry, checks: CheckResult[], durationMs: number): UnitTransition {
  return {
    runId: ctx.runId,
    unit: entry.unit,
    status: 'rolled_back',
    event: 'rolled_back',
    progress: {},
    detail: {
      file: entry.unit.rollback?.file,
      previousStatus: entry.ledger.status,
      durationMs,
      verifyResults: checks.map(({ name, ok, violations }) => ({ name, ok, violations })),
    },
  };
}

/** Written when --no-snapshot: the ledger says no snapshot was taken, and why. */
export const snapshotsOff = { reason: '--no-snapshot' };
