/** The usual unit: body, verify and ledger in one transaction. */
import { runChecks } from './checks.js';
import { ChecksFailed } from './failure.js';
import { asStatementFailure, begin, cancellable, commit, retrying, rollback, runStatement } from './steps.js';
import type { ExecContext, UnitOutcome, UnitRunner } from './context.js';
import type { PlanEntry } from '../plan/planner.js';
import { unitContext } from './unit-context.js';

export const transactionalRunner: UnitRunner = {
  async run(ctx: ExecContext, entry: PlanEntry, startedAt: number): Promise<UnitOutcome> {
    const { unit } = entry;
    return retrying(ctx, unit, () =>
      cancellable(ctx, async () => {
        await begin(ctx, unit.options);
        try {
          if (unit.definition?.type === 'unit') {
            await unit.definition.up(ctx.session.db, unitContext(ctx, unit.id)).catch((error: unknown) => {
              throw asStatementFailure(error, unit, undefined);
            });
          } else {
            for (const statement of unit.statements) await runStatement(ctx, unit, statement);
          }
          const checks = await runChecks(ctx.session.client, unit.verifies, 'verify', unit);
          if (checks.some((c) => !c.ok)) throw new ChecksFailed('verify', checks);
          await recordApplied(ctx, entry, startedAt, checks);
          await commit(ctx);
          return { checks };
        } catch (error) {
          await rollback(ctx);
          throw error;
        }
      }),
    );
  },
};

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
