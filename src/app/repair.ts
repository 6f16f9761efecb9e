/**
 * repair(): accepts an applied unit's file as it is now. A verify query that was wrong, a
 * comment that matters to someone: the file changes on purpose, and instead of drift (exit 5)
 * forever, the ledger takes the new checksum and verify queries, and its history keeps the
 * old ones with who, when and why.
 */
import { connect } from '../db/connection.js';
import { Ledger } from '../db/ledger.js';
import { withAdvisoryLock } from '../db/lock.js';
import { UsageError, isTenantifyError } from '../errors.js';
import { outcomeOf } from './apply.js';
import { loadProject } from './project.js';

export interface RepairOptions {
  dir: string;
  url: string | undefined;
  unit: string;
  reason: string;
}

export interface RepairResult {
  database: string;
  unit: string;
  /** False when the file already matched the ledger: nothing was written. */
  repaired: boolean;
  runId: number | undefined;
  previousChecksum: string;
  checksum: string;
  verifyChecks: { name: string; sql: string }[];
  user: string | undefined;
  at: Date | undefined;
}

export async function repair(options: RepairOptions): Promise<RepairResult> {
  const reason = options.reason.trim();
  if (!reason)
    throw new UsageError('repair needs a reason', {
      code: 'reason-missing',
      hint: 'say why the file changed: tenantify repair <unit> --reason "the verify was true only at creation"; it is kept in the ledger',
    });
  const project = await loadProject(options.dir);
  const unit = project.units.find((u) => u.id === options.unit);
  if (!unit) {
    throw new UsageError(`repair ${options.unit}: no such unit in the plan`, {
      code: 'unit-not-found',
      hint: `name a unit by its file name without extension, one of: ${project.units.map((u) => u.id).join(', ') || '(the plan has none)'}`,
    });
  }
  const verifyChecks = unit.verifies.map(({ name, sql }) => ({ name, sql }));
  const session = await connect(options.url, 'repair');
  const ledger = new Ledger(session.db, project.config.ledgerSchema);
  try {
    return await withAdvisoryLock(session, ledger, async () => {
      const state = await ledger.read();
      const row = state.units.find((r) => r.id === unit.id);
      if (!row || row.status !== 'applied') {
        throw new UsageError(
          `repair ${unit.id}: the unit is ${row ? row.status.replace('_', ' ') : 'not applied'}; repair accepts the edited file of an applied unit`,
          {
            code: 'unit-not-applied',
            hint: 'a unit that is not applied runs as its file says: edit it and `tenantify apply`; nothing was changed',
          },
        );
      }
      const result: RepairResult = {
        database: session.description,
        unit: unit.id,
        repaired: false,
        runId: undefined,
        previousChecksum: row.checksum,
        checksum: unit.checksum,
        verifyChecks,
        user: undefined,
        at: undefined,
      };
      if (row.checksum === unit.checksum) return result;
      const runId = await ledger.startRun('repair', { unit: unit.id, reason });
      try {
        const done = await ledger.repairUnit(runId, unit, verifyChecks, reason);
        if (!done)
          throw new UsageError(`repair ${unit.id}: the unit is no longer applied`, {
            code: 'unit-not-applied',
            hint: 'nothing was changed',
          });
        await ledger.finishRun(runId, 'done', 0);
        return { ...result, repaired: true, runId, user: done.user, at: done.at };
      } catch (error) {
        await ledger.finishRun(runId, outcomeOf(error), isTenantifyError(error) ? error.exitCode : 1).catch(() => {});
        throw error;
      }
    });
  } finally {
    await session.close();
  }
}
