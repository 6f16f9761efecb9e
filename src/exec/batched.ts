/**
 * `batch <table> key=<column> size=N`: the body runs once per keyset range ($1 exclusive,
 * $2 inclusive). Each batch commits together with the unit's cursor in the ledger, so a
 * killed run resumes at the next batch and no batch is applied twice.
 *
 * Rows inserted while the backfill runs: ranges are taken until no key lies beyond the
 * cursor, so new rows with higher keys are backfilled too; a row inserted below the cursor
 * is not revisited (the unit's verify sections are the place to catch those).
 */
import { sql } from 'kysely';
import { runChecks } from './checks.js';
import { ChecksFailed } from './failure.js';
import { asStatementFailure, begin, commit, retrying, rollback, runStatement } from './steps.js';
import { recordApplied } from './transactional.js';
import { unitContext } from './unit-context.js';
import type { ExecContext, UnitOutcome, UnitRunner } from './context.js';
import type { PlanEntry } from '../plan/planner.js';
import type { BatchDirective, Unit } from '../plan/types.js';
import type { UnitProgress } from '../db/ledger.js';

export const batchedRunner: UnitRunner = {
  async run(ctx: ExecContext, entry: PlanEntry, startedAt: number): Promise<UnitOutcome> {
    const { unit } = entry;
    const batch = unit.options.batch as BatchDirective;
    const keys = new KeyRanges(ctx, unit, batch);
    let cursor = entry.resume.kind === 'cursor' ? entry.resume.cursor : await keys.start();
    const progress: UnitProgress = {
      rowsDone: entry.resume.kind === 'cursor' ? entry.resume.rowsDone : 0,
      rowsTotal: await keys.estimateTotal(),
      batches: 0,
    };
    if (entry.resume.kind === 'cursor') ctx.reporter.note(`${unit.id}: resuming after key ${cursor} (${progress.rowsDone} rows done)`);
    const ratesStarted = performance.now();
    let rowsThisRun = 0;
    while (cursor !== undefined) {
      if (ctx.interrupt.requested) throw Object.assign(new Error('interrupted between batches'), { code: '57014' });
      const upper = await keys.upperBound(cursor);
      if (upper === undefined) break;
      const from = cursor;
      const rows = await retrying(ctx, unit, async () => {
        await begin(ctx, unit.options);
        try {
          const changed = await runBatch(ctx, unit, from, upper);
          const next: UnitProgress = { ...progress, cursor: upper, rowsDone: (progress.rowsDone ?? 0) + changed, batches: (progress.batches ?? 0) + 1 };
          if (!ctx.dryRun) await ctx.ledger.saveProgress(ctx.runId, unit.id, next);
          await commit(ctx);
          return changed;
        } catch (error) {
          await rollback(ctx);
          throw error;
        }
      });
      rowsThisRun += rows;
      progress.cursor = upper;
      progress.rowsDone = (progress.rowsDone ?? 0) + rows;
      progress.batches = (progress.batches ?? 0) + 1;
      progress.rowsPerSecond = Math.round(rowsThisRun / Math.max(0.001, (performance.now() - ratesStarted) / 1000));
      ctx.reporter.unitProgress(unit, progress);
      cursor = upper;
    }
    await begin(ctx, unit.options);
    try {
      const checks = await runChecks(ctx.session.client, unit.verifies, 'verify', unit);
      if (checks.some((c) => !c.ok)) throw new ChecksFailed('verify', checks);
      await recordApplied(ctx, entry, startedAt, checks);
      await commit(ctx);
      return { checks, note: `${progress.rowsDone} rows in ${progress.batches} batches` };
    } catch (error) {
      await rollback(ctx);
      throw error;
    }
  },
};

async function runBatch(ctx: ExecContext, unit: Unit, from: string, to: string): Promise<number> {
  if (unit.definition?.type === 'backfill') {
    try {
      const changed = await unit.definition.batch(ctx.session.db, { from, to }, unitContext(ctx, unit.id));
      return Number(changed ?? 0);
    } catch (error) {
      throw asStatementFailure(error, unit, undefined);
    }
  }
  return runStatement(ctx, unit, unit.statements[0] as Unit['statements'][number], [from, to]);
}

/** Keyset ranges over the batch key, read as text so any orderable key type works. */
class KeyRanges {
  constructor(
    private readonly ctx: ExecContext,
    private readonly unit: Unit,
    private readonly batch: BatchDirective,
  ) {}

  private get table() {
    return sql.raw(this.batch.table);
  }

  private get key() {
    return sql.raw(this.batch.key);
  }

  /** The exclusive lower bound of the first batch: one below the smallest key. */
  async start(): Promise<string | undefined> {
    const type = await sql<{ type: string }>`SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute
       WHERE attrelid = ${this.batch.table}::regclass AND attname = ${unquote(this.batch.key)}`.execute(this.ctx.session.db);
    const keyType = type.rows[0]?.type;
    if (!keyType) throw new Error(`${this.unit.file}: the batch key ${this.batch.key} is not a column of ${this.batch.table}`);
    if (!/^(smallint|integer|bigint|numeric.*)$/.test(keyType)) {
      throw new Error(`${this.unit.file}: batch keys must be integer columns for now; ${this.batch.key} is ${keyType}`);
    }
    const result = await sql<{ start: string | null }>`SELECT (min(${this.key}) - 1)::text AS start FROM ${this.table}`.execute(this.ctx.session.db);
    return result.rows[0]?.start ?? undefined;
  }

  /** The inclusive upper bound of the batch after `cursor`, or undefined when no key is left. */
  async upperBound(cursor: string): Promise<string | undefined> {
    const result = await sql<{ upper: string | null }>`
      SELECT coalesce(
        (SELECT ${this.key}::text AS upper_key FROM ${this.table} WHERE ${this.key} > ${cursor} ORDER BY ${this.key} OFFSET ${this.batch.size - 1} LIMIT 1),
        (SELECT max(${this.key})::text FROM ${this.table} WHERE ${this.key} > ${cursor})) AS upper`.execute(this.ctx.session.db);
    return result.rows[0]?.upper ?? undefined;
  }

  async estimateTotal(): Promise<number> {
    const estimate = await sql<{ n: number }>`SELECT greatest(reltuples, 0)::bigint AS n FROM pg_class WHERE oid = ${this.batch.table}::regclass`.execute(this.ctx.session.db);
    const n = Number(estimate.rows[0]?.n ?? 0);
    if (n > 1_000_000) return n;
    const exact = await sql<{ n: number }>`SELECT count(*) AS n FROM ${this.table}`.execute(this.ctx.session.db);
    return Number(exact.rows[0]?.n ?? 0);
  }
}

function unquote(identifier: string): string {
  return identifier.startsWith('"') ? identifier.slice(1, -1).replace(/""/g, '"') : identifier.toLowerCase();
}
