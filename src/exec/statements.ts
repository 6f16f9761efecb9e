/**
 * `transaction off`: statements one by one (CREATE INDEX CONCURRENTLY, ALTER TYPE ... ADD
 * VALUE). Each one done is recorded, so a resumed run starts at the first not done. A killed
 * CREATE INDEX CONCURRENTLY leaves an INVALID index behind, which IF NOT EXISTS would
 * happily skip: such an index is dropped and built again.
 */
import { cancellable, inTransaction, retrying, runStatement, timeoutSettings, unitContext, verifyAndRecordApplied } from './steps.js';
import type { ExecContext, UnitOutcome, UnitRunner } from './context.js';
import type { PlanEntry } from '../plan/planner.js';
import type { Statement } from '../plan/types.js';

export const statementsRunner: UnitRunner = {
  async run(ctx: ExecContext, entry: PlanEntry, startedAt: number): Promise<UnitOutcome> {
    const { unit } = entry;
    const { client } = ctx.session;
    const timeouts = timeoutSettings(unit.options, false);
    if (timeouts) await client.query(timeouts);
    try {
      if (unit.definition?.type === 'unit') {
        await cancellable(ctx, () => (unit.definition as { up: (db: unknown, c: unknown) => Promise<void> }).up(ctx.session.db, unitContext(ctx, unit.id)));
      } else {
        const first = entry.resume.kind === 'statement' ? entry.resume.statement : 0;
        const done = unit.statements.slice(0, first).map((s) => s.hash);
        if (first > 0) ctx.reporter.note(`${unit.id}: ${first} of ${unit.statements.length} statements were done; resuming at statement ${first + 1} (line ${unit.statements[first]?.line})`);
        for (const statement of unit.statements.slice(first)) {
          if (ctx.interrupt.requested) throw Object.assign(new Error('interrupted'), { code: '57014' });
          await dropInvalidIndex(ctx, unit.id, statement);
          await retrying(ctx, unit, () => cancellable(ctx, () => runStatement(ctx, unit, statement)));
          done.push(statement.hash);
          await ctx.ledger.saveProgress(ctx.runId, unit.id, { statements: done }, { name: 'statement_done', detail: { statement: done.length, line: statement.line } });
        }
      }
      return { checks: await inTransaction(ctx, unit.options, () => verifyAndRecordApplied(ctx, entry, startedAt)) };
    } finally {
      if (timeouts) await client.query('RESET lock_timeout; RESET statement_timeout').catch(() => {});
    }
  },
};

export async function dropInvalidIndex(ctx: ExecContext, unitId: string, statement: Statement): Promise<void> {
  const index = statement.createsIndex;
  if (!index) return;
  const found = await ctx.session.client.query<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relname = $1 AND NOT i.indisvalid
        AND (($2::text IS NULL AND n.nspname = ANY (current_schemas(false))) OR n.nspname = $2)`,
    [index.name, index.schema ?? null],
  );
  for (const { name } of found.rows) {
    ctx.reporter.note(`${unitId}: index ${name} is INVALID (a build was interrupted); dropping it to build it again`);
    await ctx.session.client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`);
    await ctx.ledger.event(ctx.runId, unitId, 'invalid_index_dropped', { index: name, line: statement.line });
  }
}
