/**
 * `apply --auto-rollback`: when a unit, a precheck or a verify fails, revert what this run
 * applied (and what it left half done: committed batches, statements outside a transaction),
 * newest first, with the units' rollback files. The run still ends with the failure's exit code.
 */
import { TenantifyError, UsageError, isTenantifyError } from '../errors.js';
import type { ExecContext } from '../exec/context.js';
import { revertUnits, type RevertReport, type RevertReporter } from '../exec/revert.js';
import { planRollback, type Plan, type RollbackEntry } from '../plan/planner.js';
import type { Unit } from '../plan/types.js';

/** Checked before anything runs: every unit this run may revert needs a rollback it can run. */
export function ensureAutoRollbackPossible(plan: Plan): void {
  const lacking = plan.toRun.filter((e) => !e.unit.rollback || e.unit.rollback.options.batch);
  if (lacking.length === 0) return;
  throw new UsageError(
    `--auto-rollback needs a rollback file for every unit it may revert; ${lacking.map((e) => e.unit.id).join(', ')} ${lacking.length === 1 ? 'has' : 'have'} none it can run`,
    {
      code: 'rollback-file-missing',
      hint: 'write rollbacks/<unit>.sql for each (not batched), or apply without --auto-rollback; nothing was touched',
    },
  );
}

/** Failures worth undoing the run for: a unit (1) or a check (3); not an interruption, which asks to stop now. */
export function warrantsAutoRollback(error: unknown): error is TenantifyError {
  return isTenantifyError(error) && (error.exitCode === 1 || error.exitCode === 3);
}

/**
 * Reverts the run's units after `cause`; returns the error the run ends with: the cause,
 * saying what was reverted, or both failures when a rollback fails too.
 */
export async function autoRollback(
  ctx: ExecContext,
  units: Unit[],
  reporter: RevertReporter,
  cause: TenantifyError,
): Promise<TenantifyError> {
  const state = await ctx.ledger.read();
  const entries = planRollback(units, state.units).toRevert.filter((e) => e.ledger.runId === ctx.runId);
  if (entries.length === 0) return cause;
  const ids = entries.map((e) => e.unit.id);
  reporter.note(`--auto-rollback: ${cause.message}; reverting what this run applied, newest first: ${ids.join(', ')}`);
  await ctx.ledger.event(ctx.runId, null, 'auto_rollback_started', { units: ids, cause: cause.message });
  const reports: RevertReport[] = [];
  try {
    await revertUnits(ctx, reporter, entries, reports);
  } catch (error) {
    await ctx.ledger.event(ctx.runId, null, 'auto_rollback_failed', {
      reverted: reports.map((r) => r.id),
      error: (error as Error).message,
    });
    return bothFailed(cause, error, entries, reports);
  }
  await ctx.ledger.event(ctx.runId, null, 'auto_rollback_done', { units: ids });
  return new TenantifyError(cause.message, {
    code: cause.code,
    exitCode: cause.exitCode,
    details: [...cause.details, `--auto-rollback reverted ${ids.join(', ')}: the database is as this run found it`],
    hint: 'the ledger records the failure and each revert; fix the unit or the data, then run `tenantify apply` again',
    cause,
  });
}

/** The unit failed and so did a revert: say both, what still stands, and which snapshots to restore from. */
function bothFailed(cause: TenantifyError, error: unknown, entries: RollbackEntry[], reports: RevertReport[]): TenantifyError {
  const reverted = new Set(reports.map((r) => r.id));
  const standing = entries.filter((e) => !reverted.has(e.unit.id));
  const revertError = isTenantifyError(error) ? error : undefined;
  const snapshots = standing.flatMap((e) => {
    const file = (e.ledger.snapshot as { file?: string } | null)?.file;
    return file ? [`snapshot taken before ${e.unit.id}: ${file} (tenantify snapshots restore ${e.unit.id})`] : [];
  });
  return new TenantifyError(`${cause.message}; --auto-rollback failed too: ${revertError?.message ?? (error as Error).message}`, {
    code: 'auto-rollback-failed',
    exitCode: cause.exitCode,
    details: [
      ...cause.details,
      '--auto-rollback:',
      ...(revertError?.details ?? []).map((d) => `  ${d}`),
      reverted.size > 0 ? `reverted: ${[...reverted].join(', ')}` : 'nothing was reverted',
      `still applied by this run: ${standing.map((e) => e.unit.id).join(', ')}`,
      ...(snapshots.length > 0 ? snapshots : ['no snapshot was taken of these units']),
    ],
    hint: 'the database needs a hand: it is neither as this run found it nor as the plan wants it. Fix the rollback named above and run `tenantify rollback`, or restore from the snapshots listed; the ledger records every step',
    cause,
  });
}
