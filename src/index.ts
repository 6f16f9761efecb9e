/** The programmatic API, and the helpers TypeScript units import. */
/** Kysely's sql tag, so TypeScript units need no import of their own beyond tenantify. */
export { sql, type Kysely } from 'kysely';
export { defineUnit, defineBackfill, type UnitDefinition, type UnitContext, type KeyRange, type CheckDefinition } from './plan/define.js';
export { apply, type ApplyOptions, type ApplyResult } from './app/apply.js';
export { inspect, type Inspection } from './app/inspect.js';
export { loadProject } from './app/project.js';
export { planRun, type Plan, type PlanEntry } from './plan/planner.js';
export { startThrowawayPostgres, withThrowawayPostgres, type ThrowawayPostgres } from './db/throwaway.js';
export { ExitCode, TenantifyError } from './errors.js';
