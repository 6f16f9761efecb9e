/**
 * Guards around a run: the baseline before the first unit, a check after each one. A unit
 * that trips a guard is reverted at once with its rollback file, and fails the run (exit 1);
 * the ledger records the timings, the regression and the revert.
 */
import { UnitFailedError, UsageError } from '../errors.js';
import type { ExecContext } from '../exec/context.js';
import { describeRegression, guardRegressions, timeGuards, type Guard, type GuardRegression, type GuardTiming } from '../exec/guards.js';
import { revertReported, type RevertReporter } from '../exec/revert.js';
import { planRollback, type PlanEntry } from '../plan/planner.js';
import type { Unit } from '../plan/types.js';

/** Timed before anything runs; a guard that does not even run is a configuration error. */
export async function guardBaseline(ctx: ExecContext, guards: Guard[]): Promise<GuardTiming[]> {
  let baseline: GuardTiming[];
  try {
    baseline = await timeGuards(ctx.session.client, guards);
  } catch (error) {
    throw new UsageError(`a guard in tenantify.config.json does not run: ${(error as Error).message}`, {
      code: 'guard-invalid',
      hint: 'fix its sql (a read-only query); nothing was applied',
    });
  }
  await ctx.ledger.event(ctx.runId, null, 'guards_baseline', { guards: baseline });
  ctx.reporter.note(`guards: ${baseline.map((t) => `${t.name} ${t.medianMs.toFixed(2)} ms`).join(', ')} (median, before the run)`);
  return baseline;
}

/** After each unit: time the guards again; on a regression, revert the unit and fail. */
export function checkGuardsAfter(ctx: ExecContext, guards: Guard[], baseline: GuardTiming[], units: Unit[], reporter: RevertReporter) {
  return async (entry: PlanEntry): Promise<void> => {
    const { unit } = entry;
    let regressions: GuardRegression[];
    let failure: string | undefined;
    try {
      const now = await timeGuards(ctx.session.client, guards);
      regressions = guardRegressions(guards, baseline, now);
      await ctx.ledger.event(ctx.runId, unit.id, 'guards_checked', { guards: now, regressions });
    } catch (error) {
      failure = `a guard no longer runs: ${(error as Error).message}`;
      regressions = [];
      await ctx.ledger.event(ctx.runId, unit.id, 'guards_checked', { error: failure });
    }
    if (regressions.length === 0 && !failure) return;
    const problems = failure ? [failure] : regressions.map(describeRegression);
    await ctx.ledger.event(ctx.runId, unit.id, 'guard_regressed', { regressions, ...(failure ? { error: failure } : {}) });
    throw await revertTripped(ctx, unit, units, reporter, problems);
  };
}

async function revertTripped(
  ctx: ExecContext,
  unit: Unit,
  units: Unit[],
  reporter: RevertReporter,
  problems: string[],
): Promise<UnitFailedError> {
  const message = `unit ${unit.id} tripped ${problems.length === 1 ? 'a guard' : `${problems.length} guards`}`;
  const entry = planRollback(units, (await ctx.ledger.read()).units).toRevert.find((e) => e.unit.id === unit.id);
  if (!entry || entry.problem) {
    return new UnitFailedError(message, {
      code: 'guard-failed',
      details: problems,
      hint: `it stays applied: ${entry?.problem ?? 'it cannot be reverted'}. Revert it by hand or write its rollback and run \`tenantify rollback --steps 1\``,
    });
  }
  reporter.note(`${message}: ${problems.join('; ')}; reverting it`);
  await revertReported(ctx, reporter, entry);
  return new UnitFailedError(message, {
    code: 'guard-failed',
    details: [...problems, `${unit.id} was reverted with ${entry.unit.rollback?.file}`],
    hint: "the ledger records the timings and the revert; change the unit so it keeps the guarded query fast (or raise the guard's threshold), then run `tenantify apply` again",
  });
}
