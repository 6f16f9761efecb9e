/**
 * Runs a plan's pending units in order, each through the lifecycle (lifecycle.ts); units
 * that can travel several to a message go through the transport's trains (transport.ts).
 */
import type { Plan, PlanEntry } from '../plan/planner.js';
import type { ExecContext, UnitReport } from './context.js';
import { connectionLost, interruptedAt, isConnectionLost } from './failure-report.js';
import { runnerFor } from './kinds.js';
import { applyUnit } from './lifecycle.js';
import { Trains } from './transport.js';

export type { UnitReport } from './context.js';

export interface ExecHooks {
  /** After each unit is applied and committed (the run's guards); throwing fails the run there. */
  afterUnit?: (entry: PlanEntry) => Promise<void>;
}

/** Runs the plan's pending units in order. Throws the first failure as a TenantifyError. */
export async function executePlan(ctx: ExecContext, plan: Plan, reports: UnitReport[], hooks: ExecHooks = {}): Promise<void> {
  const before = reports.length;
  try {
    await executeEntries(ctx, plan.toRun, reports, hooks);
  } catch (error) {
    if (!isConnectionLost(error, ctx.session)) throw error;
    // A message of several units lost its connection: the unit in flight is the first not reported done.
    const entry = plan.toRun[reports.length - before];
    throw connectionLost(error, entry && { unitId: entry.unit.id, direction: 'apply', partial: !runnerFor(entry.unit).inTransaction });
  }
}

async function executeEntries(ctx: ExecContext, entries: PlanEntry[], reports: UnitReport[], hooks: ExecHooks): Promise<void> {
  const trains = new Trains(ctx, entries, (entry, options) => applyUnit(ctx, entry, options), hooks.afterUnit);
  for (let i = 0; i < entries.length;) {
    const entry = entries[i] as PlanEntry;
    if (ctx.interrupt.requested) throw interruptedAt(ctx.interrupt.requested, entry.unit.id);
    if (ctx.dryRun && !entry.unit.options.transaction) {
      ctx.reporter.note(`${entry.unit.id}: not run in a dry run (it runs outside a transaction)`);
      reports.push({ id: entry.unit.id, outcome: 'not-run', durationMs: 0, checks: [] });
      i++;
      continue;
    }
    if (trains.canLeaveAt(i)) {
      i += await trains.runFrom(i, reports);
      continue;
    }
    reports.push(await applyUnit(ctx, entry));
    await hooks.afterUnit?.(entry);
    i++;
  }
}
