/**
 * The usual SQL unit: its statements in the unit's one transaction, with its verify and the
 * ledger's record. A real or dry run first sends all of it as one message (transport.ts);
 * this runs it statement by statement, which places an error under its line.
 */
import { runStatement } from './steps.js';
import type { ExecContext, Runner, Work } from './context.js';

export const transactionalRunner: Runner = {
  name: 'transactional',
  inTransaction: true,
  async body(ctx: ExecContext, { script }: Work): Promise<undefined> {
    for (const statement of script.statements) await runStatement(ctx, script, statement);
    return undefined;
  },
};
