/** The usual unit: body, verify and ledger in one transaction. */
import { runChecks } from './checks.js';
import { ChecksFailed } from './failure.js';
import { asStatementFailure, cancellable, inTransaction, retrying, runStatement } from './steps.js';
import type { ExecContext, UnitOutcome, UnitRunner } from './context.js';
import type { PlanEntry } from '../plan/planner.js';
import { unitContext } from './unit-context.js';

export const transactionalRunner: UnitRunner = {
  async run(ctx: ExecContext, entry: PlanEntry, startedAt: number): Promise<UnitOutcome> {
    const { unit } = entry;
    return retrying(ctx, unit, () =>
      cancellable(ctx, () =>
        inTransaction(ctx, unit.options, async () => {
          if (unit.definition?.type === 'unit') {
            await unit.definition.up(ctx.session.db, unitContext(ctx, unit.id)).catch((error: unknown) => {
              throw asStatementFailure(error, unit, undefined);
            });
          } else {
            for (const statement of unit.statements) await runStatement(ctx, unit, statement);
          }
          return { checks: await verifyAndRecordApplied(ctx, entry, startedAt) };
        }),
      ),
    );
  },
};

/** Inside the unit's last transaction: the verify sections must pass, then the unit is applied with them. */
export async function verifyAndRecordApplied(ctx: ExecContext, entry: PlanEntry, startedAt: number): Promise<UnitOutcome['checks']> {
  const checks = await runChecks(ctx.session.client, entry.unit.verifies, 'verify', entry.unit);
  if (checks.some((c) => !c.ok)) throw new ChecksFailed('verify', checks);
  await recordApplied(ctx, entry, startedAt, checks);
  return checks;
}

/** Inside the unit's last transaction: the unit is applied, with its verify queries and results. */
export async function recordApplied(ctx: ExecContext, entry: PlanEntry, startedAt: number, checks: UnitOutcome['checks']): Promise<void> {
  const { unit } = entry;
  await ctx.ledger.transition({
    runId: ctx.runId,
    unit,
    status: 'applied',
    event: 'applied',
    durationMs: Math.round(performance.now() - startedAt),
    verifyChecks: unit.verifies.map(({ name, sql }) => ({ name, sql })),
    verifyResults: checks.map(({ name, ok, violations, durationMs }) => ({ name, ok, violations, durationMs })),
  });
}
