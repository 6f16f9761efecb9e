/**
 * The programmatic API: what the CLI's commands run, for an application or a script. Every
 * expected failure is thrown as a TenantifyError (one of the classes below) with the exit
 * code of the contract in `exitCode` and what to do next in `hint`; anything else is a bug.
 */

/** Kysely's sql tag, so TypeScript units need no import of their own beyond tenantify. */
export { sql, type Kysely } from 'kysely';
/** `export default defineUnit({ up })` and `defineBackfill({ batch })`: what a TypeScript unit's file exports. */
export { defineUnit, defineBackfill, type UnitDefinition, type UnitContext, type KeyRange, type CheckDefinition } from './plan/define.js';
/** What a `tenancy consolidate --from-databases` unit runs first: a source database's tables streamed (COPY) into a staging schema of the target. */
export { stageSource, type StageSourceOptions, type StageTable } from './db/stage-source.js';
export { copySources, type CopySource, type CopySourcesOptions, type CopiedSource } from './db/copy-sources.js';

/** Applies the plan's pending units to a database (`tenantify apply`): resumes where a run stopped, refuses drift. */
export { apply, type ApplyOptions, type ApplyResult } from './app/apply.js';
/** Runs the verify queries the ledger stored with each applied unit (`tenantify verify`); reads only. */
export { verify, type VerifyOptions, type VerifyResult, type VerifiedCheck } from './app/verify.js';
/** Reverts applied units, newest first, with their rollback files or snapshots (`tenantify rollback`). */
export { rollback, type RollbackOptions, type RollbackResult } from './app/rollback.js';
/** Apply, verify, roll back to exactly the source, apply again, on a copy (`tenantify rehearse`). */
export { rehearse, type RehearseOptions, type RehearseResult, type RehearseStep } from './app/rehearse.js';
/** What the ledger and the plan say of a database, without changing it (`tenantify status`). */
export { inspect, type Inspection } from './app/inspect.js';
/**
 * Fleets: one plan across many databases (`--targets`), each target with its own ledger and
 * lock; results per target (`{ name, status, applied, pending, unit, error }`), never a throw
 * for one target's failure. `targetsFromFile`/`parseTargets` read a targets file.
 */
export {
  applyFleet,
  verifyFleet,
  statusFleet,
  rollbackFleet,
  targetsFromFile,
  targetsFromQuery,
  type FleetOptions,
  type ApplyFleetOptions,
  type VerifyFleetOptions,
  type RollbackFleetOptions,
  type FleetResult,
  type FleetTargetResult,
  type FleetObserver,
  type TargetStatus,
} from './app/fleet.js';
export { parseTargets, targetsFromRows, type Target } from './fleet/targets.js';
/** Reads a plan directory (its config and units), refusing a bad one with every error at once. */
export { loadProject } from './app/project.js';
/** The pure planner: from the units and the ledger's rows, what runs and where it resumes. */
export { planRun, type Plan, type PlanEntry } from './plan/planner.js';
/** A throwaway PostgreSQL (local binaries, or Docker) for rehearsals and tests. */
export { startThrowawayPostgres, withThrowawayPostgres, type ThrowawayPostgres } from './db/throwaway.js';
/** How a run is shown: the apply's and the rollback's reporters (`apply({ reporter })`, `rollback({ reporter })`). */
export type { Reporter, RevertReporter, UnitReport } from './exec/context.js';

/**
 * The error family and the exit codes of the contract: `ExitCode.unitFailed` (1),
 * `usage` (2), `violations` (3), `locked` (4), `drift` (5), `interrupted` (130).
 * TenantifyError is the base (`exitCode`, `hint`, `details`); UsageError and PlanError(s)
 * (2: bad arguments, config or plan, nothing touched), UnitFailedError (1: a unit failed and
 * was rolled back), ViolationsError (3: a precheck or verify returned rows), LockHeldError
 * (4: another run holds the lock), DriftError (5: an applied unit changed), ConnectionLostError
 * (1: the connection dropped mid-run; the next run resumes), InterruptedError (130: SIGINT/SIGTERM
 * stopped the run at a safe point).
 */
export {
  ExitCode,
  type ExitCodeValue,
  type ErrorOptions,
  type PlanErrorOptions,
  TenantifyError,
  UsageError,
  PlanError,
  PlanErrors,
  UnitFailedError,
  ViolationsError,
  LockHeldError,
  DriftError,
  ConnectionLostError,
  InterruptedError,
  isTenantifyError,
} from './errors.js';
