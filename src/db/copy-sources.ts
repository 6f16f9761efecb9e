/**
 * `tenancy consolidate --parallel N`: the copy of every schema source, N at a time, by the
 * unit `consolidate_copy` (the executor runs units one after another; the sources of a
 * consolidation are independent, so this one unit runs them side by side).
 *
 * Each source is what its own unit is without `--parallel`: one REPEATABLE READ transaction
 * on a session of its own (its `--freeze` lock first, then its statements), and its verify
 * queries in that same snapshot before the commit. A source whose tenant row is there was
 * committed whole by an earlier run: it is skipped, so a killed run resumes and copies no row
 * twice. Progress across all sources (rows of the planned total, rate, ETA) goes to the
 * run's progress line; each source's rows, size and time to the run's notes and the note.
 * SIGINT cancels every source in flight (each rolls back) and the copy takes no other.
 */
import type { UnitContext } from '../plan/define.js';
import { withTransaction } from './transaction.js';

export interface CopySource {
  name: string;
  tenantId: number;
  /** Its rows and the size of its tables when the plan was written: the progress's total. */
  rows: number;
  bytes: number;
  /** `LOCK TABLE ... IN EXCLUSIVE MODE` of its tables (`--freeze`). */
  lock?: string;
  /** Its statements in order; `copies`: an INSERT into a shared table, counted as the source's rows. */
  statements: { sql: string; copies?: boolean }[];
  /** Queries that return rows when the copy differs from the source. */
  verifies: { name: string; sql: string }[];
}

export interface CopySourcesOptions {
  /** Sources copied at once. */
  parallel: number;
  /** The tenants table (qualified): a source's row there means it was copied. */
  tenants: string;
  sources: CopySource[];
  /** Run once every source is copied, on the unit's own session (the sequences past every id). */
  after?: string[];
}

export interface CopiedSource {
  source: string;
  tenantId: number;
  rows: number;
  bytes: number;
  ms: number;
  /** Verify queries passed in the copy's snapshot (0 when it was copied by an earlier run). */
  verified: number;
  skipped: boolean;
  /** Which of the N sessions copied it (1..N). */
  session: number;
}

export async function copySources(ctx: UnitContext, options: CopySourcesOptions): Promise<CopiedSource[]> {
  const total = options.sources.reduce((n, s) => n + s.rows, 0);
  const started = performance.now();
  let rowsDone = 0;
  const report = () => {
    const seconds = (performance.now() - started) / 1000;
    ctx.progress({ rowsDone, rowsTotal: total, ...(seconds > 1 && rowsDone > 0 ? { rowsPerSecond: Math.round(rowsDone / seconds) } : {}) });
  };
  const queue = [...options.sources];
  const copied: CopiedSource[] = [];
  let failure: unknown;
  const worker = async (_: unknown, index: number): Promise<void> => {
    const session = await ctx.connect('consolidate copy');
    try {
      for (let source = queue.shift(); source && failure === undefined; source = queue.shift()) {
        const result = await session.run(() =>
          copyOne(session.client, source, options.tenants, (rows) => {
            rowsDone += rows;
            report();
          }),
        );
        copied.push({ ...result, session: index + 1 });
        const left = total - rowsDone;
        const rate = rowsDone / ((performance.now() - started) / 1000);
        ctx.log(
          `${source.name} (tenant ${source.tenantId}): ${result.skipped ? 'copied by an earlier run' : `${result.rows} rows, ${mb(source.bytes)} on disk, ${(result.ms / 1000).toFixed(1)} s, ${result.verified} verify queries passed in its snapshot`}; ${copied.length} of ${options.sources.length} sources${left > 0 && rate > 0 ? `, ETA ~${Math.ceil(left / rate)} s` : ''}`,
        );
      }
    } catch (error) {
      failure ??= error;
    } finally {
      await session.close();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.parallel, options.sources.length)) }, worker));
  if (failure !== undefined) throw failure;
  for (const statement of options.after ?? []) await ctx.client.query(statement);
  return copied.sort((a, b) => a.tenantId - b.tenantId);
}

async function copyOne(
  client: Awaited<ReturnType<UnitContext['connect']>>['client'],
  source: CopySource,
  tenants: string,
  counted: (rows: number) => void,
): Promise<Omit<CopiedSource, 'session'>> {
  const started = performance.now();
  const result = (rows: number, verified: number, skipped: boolean): Omit<CopiedSource, 'session'> => ({
    source: source.name,
    tenantId: source.tenantId,
    rows,
    bytes: source.bytes,
    ms: Math.round(performance.now() - started),
    verified,
    skipped,
  });
  const copied = await withTransaction(client, { isolation: 'repeatable read' }, async () => {
    // A killed run: its session ends within a second, even inside a statement, and its locks with it.
    await client.query(`SET LOCAL client_connection_check_interval = '1s'`);
    // The lock before the first query: the snapshot is taken after it, with every write committed before.
    if (source.lock) await client.query(source.lock);
    const there = await client.query(`SELECT FROM ${tenants} WHERE id = $1`, [source.tenantId]);
    // Copied by an earlier run: nothing is written, and the transaction's end only lets go of the snapshot.
    if ((there.rowCount ?? 0) > 0) return undefined;
    let rows = 0;
    for (const statement of source.statements) {
      const done = await client.query(statement.sql);
      if (statement.copies) {
        rows += done.rowCount ?? 0;
        counted(done.rowCount ?? 0);
      }
    }
    for (const v of source.verifies) {
      const found = await client.query(v.sql);
      if ((found.rowCount ?? 0) > 0)
        throw new Error(`${source.name}: verify "${v.name}" failed in the copy's snapshot: ${JSON.stringify(found.rows.slice(0, 3))}`);
    }
    return rows;
  });
  if (copied === undefined) {
    counted(source.rows);
    return result(source.rows, 0, true);
  }
  return result(copied, source.verifies.length, false);
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
