/**
 * `rollback`: units reverted newest first, each with its rollback file through the same
 * lifecycle as an apply (lifecycle.ts), or (`--from-snapshot`) its tables restored from
 * the snapshot taken before it; the relations it created (tables, views, sequences,
 * indexes: created.ts reads them from its statements) are dropped, so the schema is the one
 * before it and `apply` runs it again.
 */
import type { RollbackEntry } from '../plan/planner.js';
import { ensureRestorable, restoreSnapshot } from '../db/snapshot-restore.js';
import type { SnapshotManifest } from '../db/snapshot.js';
import type { ExecContext, Reporter, RevertReporter } from './context.js';
import type { CheckResult } from './failure.js';
import { interruptedBeforeRevert } from './failure-report.js';
import { createdRelations, dropStatements } from '../plan/created.js';
import { UnitFailedError } from '../errors.js';
import { revertUnit as runRevert } from './lifecycle.js';
import { withTransaction } from '../db/transaction.js';

export type { RevertReporter } from './context.js';

export interface RevertReport {
  id: string;
  outcome: 'rolled_back';
  durationMs: number;
  checks: CheckResult[];
}

/** The shared steps (retries, timeouts) only ever write notes; a revert's own events go to its RevertReporter. */
export function notesOnly(reporter: Pick<RevertReporter, 'note'>): Reporter {
  return { unitStarted: () => {}, unitProgress: () => {}, unitDone: () => {}, unitFailed: () => {}, note: (text) => reporter.note(text) };
}

/** Reverts `entries` in the order given (newest first). Throws the first failure; older units are then left alone. */
export async function revertUnits(
  ctx: ExecContext,
  reporter: RevertReporter,
  entries: RollbackEntry[],
  reports: RevertReport[],
): Promise<void> {
  for (const entry of entries) {
    if (ctx.interrupt.requested) throw interruptedBeforeRevert(ctx.interrupt.requested, entry.unit.id, 'tenantify rollback');
    reports.push(await revertReported(ctx, reporter, entry));
  }
}

/** Reverts one unit with its rollback file; on failure the unit keeps its state and the ledger says why. */
export async function revertReported(ctx: ExecContext, reporter: RevertReporter, entry: RollbackEntry): Promise<RevertReport> {
  const { durationMs, checks } = await runRevert(ctx, reporter, entry);
  return { id: entry.unit.id, outcome: 'rolled_back', durationMs, checks };
}

/** The snapshot a unit's tables can be restored from, when its ledger row has a usable one. */
export function restorableSnapshot(entry: RollbackEntry): SnapshotManifest | undefined {
  const manifest = entry.ledger.snapshot as SnapshotManifest | null;
  return manifest && (manifest.scope === 'tables' || manifest.scope === 'full') ? manifest : undefined;
}

/**
 * `rollback --from-snapshot`: each unit's tables restored from the snapshot taken before it,
 * newest first; a unit without a snapshot is reverted with its rollback file. Every snapshot
 * is checked (file present, sha256, nothing depending on its tables that a restore would
 * lose) before anything is restored.
 */
export async function revertFromSnapshots(
  ctx: ExecContext,
  reporter: RevertReporter,
  entries: RollbackEntry[],
  reports: RevertReport[],
): Promise<void> {
  for (const entry of entries) {
    const manifest = restorableSnapshot(entry);
    if (manifest) await ensureRestorable(ctx.session, manifest);
  }
  for (const entry of entries) {
    if (ctx.interrupt.requested)
      throw interruptedBeforeRevert(ctx.interrupt.requested, entry.unit.id, 'tenantify rollback --from-snapshot');
    const manifest = restorableSnapshot(entry);
    if (!manifest) {
      reports.push(await revertReported(ctx, reporter, entry));
      continue;
    }
    const startedAt = performance.now();
    reporter.revertStarted(entry);
    await ctx.ledger.event(ctx.runId, entry.unit.id, 'rollback_started', { snapshot: manifest.file, tables: manifest.tables });
    // Views the unit created go first: the restore recreates the views that read its tables, and
    // one of the unit's may read a column the restored table no longer has. The rest goes after it.
    const { views, rest } = dropStatements(await createdRelations(entry.unit));
    try {
      await createdDropped(ctx, views);
      await restoreSnapshot(ctx.session, manifest);
    } catch (error) {
      await ctx.ledger.event(ctx.runId, entry.unit.id, 'rollback_failed', { snapshot: manifest.file, message: (error as Error).message });
      reporter.revertFailed(entry.unit, (error as Error).message);
      throw error;
    }
    const drops = [...views, ...rest];
    try {
      await withTransaction(ctx.session.client, {}, async () => {
        for (const drop of rest) await ctx.session.client.query(drop);
        const durationMs = Math.round(performance.now() - startedAt);
        await ctx.ledger.transition({
          runId: ctx.runId,
          unit: entry.unit,
          status: 'rolled_back',
          event: 'rolled_back',
          durationMs,
          detail: { fromSnapshot: manifest.file, tables: manifest.tables, dropped: drops },
        });
      });
    } catch (error) {
      const message = (error as Error).message;
      await ctx.ledger.event(ctx.runId, entry.unit.id, 'rollback_failed', { snapshot: manifest.file, restored: true, message });
      reporter.revertFailed(entry.unit, message);
      throw new UnitFailedError(
        `rollback of ${entry.unit.id}: its tables were restored from the snapshot, but what it created could not be dropped: ${message}`,
        {
          code: 'snapshot-revert-drop-failed',
          details: drops,
          hint: `${entry.unit.id} stays ${entry.ledger.status} in the ledger; drop what depends on these (or them) by hand, then run \`tenantify rollback --from-snapshot\` again`,
        },
      );
    }
    const durationMs = Math.round(performance.now() - startedAt);
    reporter.revertDone(entry.unit, { durationMs, checks: [] });
    reports.push({ id: entry.unit.id, outcome: 'rolled_back', durationMs, checks: [] });
  }
}

/** The views a unit created, dropped in one transaction before its tables are restored (none: nothing is done). */
async function createdDropped(ctx: ExecContext, drops: string[]): Promise<void> {
  if (drops.length === 0) return;
  try {
    await withTransaction(ctx.session.client, {}, async () => {
      for (const drop of drops) await ctx.session.client.query(drop);
    });
  } catch (error) {
    throw new UnitFailedError(
      `the views the unit created could not be dropped before its snapshot is restored: ${(error as Error).message}`,
      {
        code: 'snapshot-revert-drop-failed',
        details: drops,
        hint: 'nothing was restored or dropped: drop what depends on them by hand, then run `tenantify rollback --from-snapshot` again',
      },
    );
  }
}
