/**
 * `batch <table> key=ctid size=N`: batches over physical ranges of the table, for a table
 * without a primary key or a unique NOT NULL column to walk (an append-only log). A batch is
 * a range of heap blocks, `$1` the last block of the previous batch (exclusive, -1 before the
 * first) and `$2` the batch's last block (inclusive), both as text; the body selects its rows
 * with a TID range (PostgreSQL 14+ scans only those blocks):
 *
 *     WHERE t.ctid >= format('(%s,0)', $1::bigint + 1)::tid AND t.ctid < format('(%s,0)', $2::bigint + 1)::tid
 *
 * (`(b,0)` sorts before every row of block b; a tid has no negative block, hence `+ 1`). Each batch commits
 * with the unit's cursor, a block number, in the ledger: a killed run resumes at the next block
 * range. An update moves a row to another block, so the body must leave alone the rows it has
 * done (`AND key IS NULL`): walked again, they change nothing, which keeps every row changed
 * exactly once. Blocks appended while the walk runs (rows the app inserts, new row versions)
 * are walked up to the table's size at the walk's second look (batched.ts says why no further).
 */
import { sql } from 'kysely';
import type { BatchDirective, Unit } from '../plan/types.js';

/** What a walk names in its messages: the unit (or the script a precheck in ranges is in). */
export type Walked = Pick<Unit, 'id' | 'file'>;
import type { Session } from '../db/connection.js';

/** What a batched unit walks: keyset ranges of a column, or physical ranges of blocks. */
export interface Ranges {
  /** `count` segments, the last open-ended; none for an empty table. */
  segments(count: number): Promise<{ from: string; to: string | null; cursor: string }[]>;
  /** The walk's high-water mark now: the last key, or the last block; undefined when there is none. */
  last(): Promise<string | undefined>;
  /** The inclusive upper bound of the batch of about `size` rows after `cursor` (within `to`), or undefined when done. */
  upperBound(cursor: string, size: number, to: string | null): Promise<string | undefined>;
  estimateTotal(): Promise<number>;
}

/** The batch key that asks for physical ranges. */
export const physicalKey = 'ctid';

export function isPhysical(batch: BatchDirective): boolean {
  return batch.key.toLowerCase() === physicalKey;
}

export class BlockRanges implements Ranges {
  private rowsPerBlock: number | undefined;

  constructor(
    private readonly session: Session,
    private readonly unit: Walked,
    private readonly batch: BatchDirective,
  ) {}

  /** The table's last block now (-1 when it has none). */
  private async lastBlock(): Promise<number> {
    const result = await sql<{ last: string }>`
      SELECT (pg_relation_size(${this.batch.table}::regclass) / current_setting('block_size')::bigint - 1)::text AS last`.execute(
      this.session.db,
    );
    return Number(result.rows[0]?.last ?? -1);
  }

  /** Rows per block from the statistics (1 when never analyzed, so a batch starts small and the pace grows it). */
  private async density(): Promise<number> {
    if (this.rowsPerBlock !== undefined) return this.rowsPerBlock;
    const result = await sql<{ tuples: number; pages: number }>`
      SELECT greatest(reltuples, 0)::float8 AS tuples, relpages::int AS pages FROM pg_class WHERE oid = ${this.batch.table}::regclass`.execute(
      this.session.db,
    );
    const row = result.rows[0];
    this.rowsPerBlock = row && row.pages > 0 && row.tuples > 0 ? Math.max(1, row.tuples / row.pages) : 1;
    return this.rowsPerBlock;
  }

  async segments(count: number): Promise<{ from: string; to: string | null; cursor: string }[]> {
    const last = await this.lastBlock();
    if (last < 0) return [];
    const parts = Math.max(1, Math.min(count, last + 1));
    const edges = Array.from({ length: parts }, (_, i) => Math.floor(((last + 1) * i) / parts) - 1);
    return edges.map((from, i) => ({ from: String(from), to: i + 1 < edges.length ? String(edges[i + 1]) : null, cursor: String(from) }));
  }

  async last(): Promise<string | undefined> {
    const last = await this.lastBlock();
    return last < 0 ? undefined : String(last);
  }

  async upperBound(cursor: string, size: number, to: string | null): Promise<string | undefined> {
    const end = to === null ? await this.lastBlock() : Number(to);
    const at = Number(cursor);
    if (!Number.isFinite(at) || at >= end) return undefined;
    const blocks = Math.max(1, Math.round(size / (await this.density())));
    return String(Math.min(end, at + blocks));
  }

  /** The planner's estimate when over a million rows, else an exact count. */
  async estimateTotal(): Promise<number> {
    const estimate = await sql<{
      n: number;
    }>`SELECT greatest(reltuples, 0)::bigint AS n FROM pg_class WHERE oid = ${this.batch.table}::regclass`.execute(this.session.db);
    const n = Number(estimate.rows[0]?.n ?? 0);
    if (n > 1_000_000) return n;
    const exact = await sql<{ n: number }>`SELECT count(*) AS n FROM ${sql.raw(this.batch.table)}`.execute(this.session.db);
    return Number(exact.rows[0]?.n ?? 0);
  }

  toString(): string {
    return `${this.unit.id}: blocks of ${this.batch.table}`;
  }
}
