/**
 * A TypeScript unit (`defineUnit`): its `up` gets the session's Kysely and runs in the
 * unit's transaction, or outside one with `transaction: false`. (A TypeScript backfill,
 * `defineBackfill`, is batched: see batched.ts.)
 */
import { asStatementFailure, cancellable, unitContext } from './steps.js';
import type { ExecContext, Runner, Work } from './context.js';

export const typescriptRunner: Runner = {
  name: 'typescript',
  inTransaction: true,
  async body(ctx: ExecContext, { unit, script }: Work): Promise<string | undefined> {
    const definition = script.definition;
    if (definition?.type !== 'unit') throw new Error(`${script.file}: not a defineUnit() unit`);
    const run = () =>
      definition.up(ctx.session.db, unitContext(ctx, unit.id, unit)).catch((error: unknown) => {
        throw asStatementFailure(error, script, undefined);
      });
    // Inside a transaction the lifecycle makes the whole transaction cancellable.
    const note = await (script.options.transaction ? run() : cancellable(ctx, run));
    return typeof note === 'string' ? note : undefined;
  },
};

/** `transaction: false`: `up` commits as it goes (CREATE INDEX CONCURRENTLY...). */
export const typescriptOutsideRunner: Runner = { ...typescriptRunner, inTransaction: false };
