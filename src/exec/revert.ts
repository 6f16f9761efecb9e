/**
 * Reverting a unit with its file from rollbacks/, written once in the shape of applyUnit:
 * record the start, precheck, run the rollback (in one transaction with its verify sections,
 * or statement by statement), and mark the unit rolled_back in the transaction of its verify.
 * On failure the rollback's transaction is rolled back, the unit keeps its state, and the
 * ledger appends why (rollback_failed).
 */
import { InterruptedError, UnitFailedError, ViolationsError, type TenantifyError } from '../errors.js';
import type { RollbackEntry } from '../plan/planner.js';
import { ensureRestorable, restoreSnapshot, type SnapshotManifest } from '../db/snapshot.js';
import type { Script, Unit } from '../plan/types.js';
import { runChecks } from './checks.js';
import type { ExecContext, Reporter } from './context.js';
import { ChecksFailed, StatementFailure, toLedgerError, type CheckResult } from './failure.js';
import { isCancel, statementDetails, violationDetails } from './failure-report.js';
import { dropInvalidIndex } from './statements.js';
import { cancellable, inTransaction, retrying, runStatement, timeoutSettings, unitContext } from './steps.js';

export interface RevertReporter {
  revertStarted(entry: RollbackEntry): void;
  revertDone(unit: Unit, outcome: { durationMs: number; checks: CheckResult[] }): void;
  revertFailed(unit: Unit, message: string): void;
  note(text: string): void;
}

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
export async function revertUnits(ctx: ExecContext, reporter: RevertReporter, entries: RollbackEntry[], reports: RevertReport[]): Promise<void> {
  for (const entry of entries) {
    if (ctx.interrupt.requested) {
      throw new InterruptedError(`interrupted by ${ctx.interrupt.requested} before reverting ${entry.unit.id}: the units before it were reverted`, 'run `tenantify rollback` again to go on');
    }
    reports.push(await revertUnit(ctx, reporter, entry));
  }
}

export async function revertUnit(ctx: ExecContext, reporter: RevertReporter, entry: RollbackEntry): Promise<RevertReport> {
  const { unit } = entry;
  const script = rollbackScript(entry);
  const startedAt = performance.now();
  reporter.revertStarted(entry);
  await ctx.ledger.event(ctx.runId, unit.id, 'rollback_started', { file: script.file, status: entry.ledger.status, resume: entry.resume });
  try {
    const prechecks = await runChecks(ctx.session.client, script.prechecks, 'precheck', script);
    if (prechecks.some((c) => !c.ok)) throw new ChecksFailed('precheck', prechecks);
    const verified = script.options.transaction ? await revertInTransaction(ctx, entry, startedAt) : await revertStatementByStatement(ctx, entry, startedAt);
    const checks = [...prechecks, ...verified];
    const durationMs = Math.round(performance.now() - startedAt);
    reporter.revertDone(unit, { durationMs, checks });
    return { id: unit.id, outcome: 'rolled_back', durationMs, checks };
  } catch (error) {
    const failure = await recordRevertFailure(ctx, entry, error);
    reporter.revertFailed(unit, failure.message);
    throw failure;
  }
}

function rollbackScript(entry: RollbackEntry): Script {
  if (!entry.unit.rollback) throw new Error(`${entry.unit.id} has no rollback file; the caller should have refused it`);
  return entry.unit.rollback;
}

async function revertInTransaction(ctx: ExecContext, entry: RollbackEntry, startedAt: number): Promise<CheckResult[]> {
  const script = rollbackScript(entry);
  return retrying(ctx, script, () =>
    cancellable(ctx, () =>
      inTransaction(ctx, script.options, async () => {
        if (script.definition?.type === 'unit') await script.definition.up(ctx.session.db, unitContext(ctx, entry.unit.id));
        else for (const statement of script.statements) await runStatement(ctx, script, statement);
        return verifyAndRecord(ctx, entry, startedAt);
      }),
    ),
  );
}

/** `transaction off` rollbacks (DROP INDEX CONCURRENTLY): each statement done is recorded, so a new attempt resumes after it. */
async function revertStatementByStatement(ctx: ExecContext, entry: RollbackEntry, startedAt: number): Promise<CheckResult[]> {
  const script = rollbackScript(entry);
  const { client } = ctx.session;
  const timeouts = timeoutSettings(script.options, false);
  if (timeouts) await client.query(timeouts);
  try {
    if (script.definition?.type === 'unit') {
      const { up } = script.definition;
      await cancellable(ctx, () => up(ctx.session.db, unitContext(ctx, entry.unit.id)));
    } else {
      await runStatementsFrom(ctx, entry, script);
    }
    return await inTransaction(ctx, script.options, () => verifyAndRecord(ctx, entry, startedAt));
  } finally {
    if (timeouts) await client.query('RESET lock_timeout; RESET statement_timeout').catch(() => {});
  }
}

async function runStatementsFrom(ctx: ExecContext, entry: RollbackEntry, script: Script): Promise<void> {
  const first = entry.resume.kind === 'statement' ? entry.resume.statement : 0;
  const done = script.statements.slice(0, first).map((s) => s.hash);
  if (first > 0) ctx.reporter.note(`${entry.unit.id}: ${first} of ${script.statements.length} rollback statements were done; resuming at statement ${first + 1} (${script.file}:${script.statements[first]?.line})`);
  for (const statement of script.statements.slice(first)) {
    if (ctx.interrupt.requested) throw Object.assign(new Error('interrupted'), { code: '57014' });
    await dropInvalidIndex(ctx, entry.unit.id, statement);
    await retrying(ctx, script, () => cancellable(ctx, () => runStatement(ctx, script, statement)));
    done.push(statement.hash);
    await ctx.ledger.saveProgress(ctx.runId, entry.unit.id, { ...entry.ledger.progress, revertStatements: done }, {
      name: 'rollback_statement_done',
      detail: { file: script.file, statement: done.length, line: statement.line },
    });
  }
}

/** Inside the rollback's (last) transaction: its verify sections, then the unit is rolled_back. */
async function verifyAndRecord(ctx: ExecContext, entry: RollbackEntry, startedAt: number): Promise<CheckResult[]> {
  const script = rollbackScript(entry);
  const checks = await runChecks(ctx.session.client, script.verifies, 'verify', script);
  if (checks.some((c) => !c.ok)) throw new ChecksFailed('verify', checks);
  await ctx.ledger.transition({
    runId: ctx.runId,
    unit: entry.unit,
    status: 'rolled_back',
    event: 'rolled_back',
    // A later apply starts the unit afresh: no cursor or statements carried over.
    progress: {},
    detail: {
      file: script.file,
      previousStatus: entry.ledger.status,
      durationMs: Math.round(performance.now() - startedAt),
      verifyResults: checks.map(({ name, ok, violations }) => ({ name, ok, violations })),
    },
  });
  return checks;
}

async function recordRevertFailure(ctx: ExecContext, entry: RollbackEntry, error: unknown): Promise<TenantifyError> {
  const { unit } = entry;
  const script = rollbackScript(entry);
  const signal = ctx.interrupt.requested;
  const wasInterrupt = signal !== undefined && isCancel(error);
  const ledgerError = wasInterrupt ? { message: `interrupted by ${signal}`, code: 'interrupted' } : toLedgerError(error);
  await ctx.ledger.event(ctx.runId, unit.id, wasInterrupt ? 'rollback_interrupted' : 'rollback_failed', { file: script.file, status: entry.ledger.status, error: ledgerError });
  const stays = `${unit.id} stays ${entry.ledger.status}`;
  if (wasInterrupt) {
    const what = script.options.transaction ? 'its rollback was rolled back' : 'the statement in flight was cancelled; the ones before it stay done';
    return new InterruptedError(`interrupted by ${signal} while reverting ${unit.id}: ${what}`, `${stays}; run \`tenantify rollback\` again to go on`);
  }
  const hint = `${whatStays(script, error)}; ${stays} and the ledger records the error (event rollback_failed); older units were not reverted. Fix ${script.file} or the data, then run \`tenantify rollback\` again`;
  if (error instanceof ChecksFailed) return new ViolationsError(`rollback of ${unit.id}: ${error.section} failed`, { details: violationDetails(error), hint });
  if (error instanceof StatementFailure) return new UnitFailedError(`rollback of ${unit.id} failed: ${error.pgError.message}`, { details: statementDetails(error), hint });
  return new UnitFailedError(`rollback of ${unit.id} failed: ${(error as Error).message ?? String(error)}`, { hint, cause: error });
}

function whatStays(script: Script, error: unknown): string {
  if (error instanceof ChecksFailed && error.section === 'precheck') return 'the rollback did not start';
  if (script.options.transaction) return "the rollback's transaction was rolled back whole";
  return 'the rollback runs outside a transaction: the statements before the failing one stay done, and `tenantify rollback` resumes at it';
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
export async function revertFromSnapshots(ctx: ExecContext, reporter: RevertReporter, entries: RollbackEntry[], reports: RevertReport[]): Promise<void> {
  for (const entry of entries) {
    const manifest = restorableSnapshot(entry);
    if (manifest) await ensureRestorable(ctx.session, manifest);
  }
  for (const entry of entries) {
    if (ctx.interrupt.requested) {
      throw new InterruptedError(`interrupted by ${ctx.interrupt.requested} before reverting ${entry.unit.id}: the units before it were reverted`, 'run `tenantify rollback --from-snapshot` again to go on');
    }
    const manifest = restorableSnapshot(entry);
    if (!manifest) {
      reports.push(await revertUnit(ctx, reporter, entry));
      continue;
    }
    const startedAt = performance.now();
    reporter.revertStarted(entry);
    await ctx.ledger.event(ctx.runId, entry.unit.id, 'rollback_started', { snapshot: manifest.file, tables: manifest.tables });
    try {
      await restoreSnapshot(ctx.session, manifest);
    } catch (error) {
      await ctx.ledger.event(ctx.runId, entry.unit.id, 'rollback_failed', { snapshot: manifest.file, message: (error as Error).message });
      reporter.revertFailed(entry.unit, (error as Error).message);
      throw error;
    }
    const durationMs = Math.round(performance.now() - startedAt);
    await ctx.ledger.transition({ runId: ctx.runId, unit: entry.unit, status: 'rolled_back', event: 'rolled_back', durationMs, detail: { fromSnapshot: manifest.file, tables: manifest.tables } });
    reporter.revertDone(entry.unit, { durationMs, checks: [] });
    reports.push({ id: entry.unit.id, outcome: 'rolled_back', durationMs, checks: [] });
  }
}
