/**
 * `transaction off`: statements one by one (CREATE INDEX CONCURRENTLY, ALTER TYPE ... ADD
 * VALUE). Each one done is recorded, so a resumed run starts at the first not done. A killed
 * CREATE INDEX CONCURRENTLY leaves an INVALID index behind, which IF NOT EXISTS would
 * happily skip: such an index is dropped and built again.
 */
import { cancellable, retrying, runStatement, timeoutSettings } from './steps.js';
import type { ExecContext, Runner, Work } from './context.js';
import type { Statement } from '../plan/types.js';

export const statementsRunner: Runner = {
  name: 'statements',
  inTransaction: false,
  async body(ctx: ExecContext, work: Work): Promise<undefined> {
    const { unit, script } = work;
    const { client } = ctx.session;
    const timeouts = timeoutSettings(script.options, false);
    if (timeouts) await client.query(timeouts);
    try {
      const first = work.resume.kind === 'statement' ? work.resume.statement : 0;
      const done = script.statements.slice(0, first).map((s) => s.hash);
      if (first > 0 && first >= script.statements.length) {
        ctx.reporter.note(`${unit.id}: its ${first} statements were done; running its verify again`);
      } else if (first > 0) {
        const what = script === unit ? 'statements' : 'rollback statements';
        ctx.reporter.note(
          `${unit.id}: ${first} of ${script.statements.length} ${what} were done; resuming at statement ${first + 1} (${script.file}:${script.statements[first]?.line})`,
        );
      }
      for (const statement of script.statements.slice(first)) {
        ctx.interrupt.throwIfRequested();
        await dropInvalidIndex(ctx, unit.id, statement);
        await retrying(ctx, script, () => cancellable(ctx, () => runStatement(ctx, script, statement)));
        done.push(statement.hash);
        await work.direction.statementDone(ctx, work, done, statement);
      }
      return undefined;
    } finally {
      if (timeouts) await client.query('RESET lock_timeout; RESET statement_timeout; RESET session_replication_role').catch(() => {});
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
