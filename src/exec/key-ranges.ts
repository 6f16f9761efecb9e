/**
 * What a walk goes over: keyset ranges of a column (here), or physical ranges of blocks for
 * `key=ctid` (block-ranges.ts). A batched unit's workers walk them (batched.ts), and so does a
 * precheck in ranges (checks.ts), one short query per range.
 */
import { sql } from 'kysely';
import type { BatchDirective } from '../plan/types.js';
import type { Session } from '../db/connection.js';
import { citusRowEstimate, isDistributed } from '../db/citus.js';
import { keyDensity, stepUpper } from './key-steps.js';
import { BlockRanges, isPhysical, type Ranges, type Walked } from './block-ranges.js';

export type { Ranges };

/** Keyset ranges of the batch key, or physical ranges of blocks for `key=ctid` (block-ranges.ts). */
export function rangesOf(session: Session, unit: Walked, batch: BatchDirective): Ranges {
  return isPhysical(batch) ? new BlockRanges(session, unit, batch) : new KeyRanges(session, unit, batch);
}

/** Keyset ranges over the batch key, read as text so any orderable key type works. */
class KeyRanges implements Ranges {
  constructor(
    private readonly session: Session,
    private readonly unit: Walked,
    private readonly batch: BatchDirective,
  ) {}

  /** The key's type, once start() has read it. */
  private keyType: string | undefined;

  private get table() {
    return sql.raw(this.batch.table);
  }

  private get key() {
    return sql.raw(this.batch.key);
  }

  /** The exclusive lower bound of the first batch: a value below the smallest key. */
  private async readKeyType(): Promise<string> {
    const type = await sql<{ type: string }>`SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute
       WHERE attrelid = ${this.batch.table}::regclass AND attname = ${unquote(this.batch.key)} AND NOT attisdropped`.execute(
      this.session.db,
    );
    const keyType = type.rows[0]?.type;
    if (!keyType) throw new Error(`${this.unit.file}: the batch key ${this.batch.key} is not a column of ${this.batch.table}`);
    return keyType;
  }

  async start(): Promise<string | undefined> {
    const keyType = await this.readKeyType();
    this.keyType = keyType;
    // ORDER BY ... LIMIT 1 rather than min(): it uses the index, and works for types without min() (uuid).
    const result = await sql<{ min: string | null; below: string | null; ok: boolean | null }>`
      SELECT first::text AS min, below, (below IS NULL OR below::${sql.raw(keyType)} < first) AS ok
        FROM (SELECT ${this.key} AS first FROM ${this.table} ORDER BY ${this.key} LIMIT 1) f,
             LATERAL (SELECT ${sql.raw(belowExpression(keyType))} AS below) b`.execute(this.session.db);
    const row = result.rows[0];
    if (!row || row.min === null) return undefined;
    if (row.below === null || !row.ok) {
      throw new Error(
        `${this.unit.file}: cannot start a keyset over ${this.batch.key} (${keyType}): no value sorts below its smallest key ${row.min}; use an integer, numeric, date/time, text or uuid key`,
      );
    }
    return row.below;
  }

  /** The inclusive upper bound of the batch after `cursor` (within `to`), or undefined when no key is left. */
  async upperBound(cursor: string, size: number, to: string | null): Promise<string | undefined> {
    const steps = await this.steps();
    if (steps) {
      const until = to === null ? null : BigInt(to);
      let upper = stepUpper(BigInt(cursor), size, steps.density, steps.last, until);
      if (upper === undefined) {
        // Past the last key seen: rows inserted since may lie beyond it.
        steps.last = BigInt((await this.lastKey()) ?? cursor);
        upper = stepUpper(BigInt(cursor), size, steps.density, steps.last, until);
      }
      return upper?.toString();
    }
    const within = to === null ? sql`true` : sql`${this.key} <= ${to}`;
    const result = await sql<{ upper: string | null }>`
      SELECT coalesce(
        (SELECT ${this.key}::text AS upper_key FROM ${this.table} WHERE ${this.key} > ${cursor} AND ${within} ORDER BY ${this.key} OFFSET ${size - 1} LIMIT 1),
        (SELECT ${this.key}::text AS last_key FROM ${this.table} WHERE ${this.key} > ${cursor} AND ${within} ORDER BY ${this.key} DESC LIMIT 1)) AS upper`.execute(
      this.session.db,
    );
    return result.rows[0]?.upper ?? undefined;
  }

  /** A Citus distributed table's integer key is stepped (key-steps.ts): its density and last key, once per walk; undefined otherwise. */
  private stepping: Promise<{ density: number; last: bigint } | undefined> | undefined;

  private steps(): Promise<{ density: number; last: bigint } | undefined> {
    this.stepping ??= (async () => {
      if (!(await isDistributed(this.session, this.batch.table))) return undefined;
      const keyType = await this.readKeyType();
      if (!/^(smallint|integer|bigint)$/.test(keyType)) return undefined;
      const first = await sql<{
        first: string | null;
      }>`SELECT ${this.key}::text AS first FROM ${this.table} ORDER BY ${this.key} LIMIT 1`.execute(this.session.db);
      const last = await this.lastKey();
      const from = first.rows[0]?.first;
      if (from === null || from === undefined || last === undefined) return undefined;
      const rows = (await citusRowEstimate(this.session, this.batch.table)) ?? 0;
      return { density: keyDensity(rows, BigInt(from), BigInt(last)), last: BigInt(last) };
    })();
    return this.stepping;
  }

  last(): Promise<string | undefined> {
    return this.lastKey();
  }

  /** The largest key now, as text; undefined for an empty table. */
  private async lastKey(): Promise<string | undefined> {
    const result = await sql<{
      last: string | null;
    }>`SELECT ${this.key}::text AS last FROM ${this.table} ORDER BY ${this.key} DESC LIMIT 1`.execute(this.session.db);
    return result.rows[0]?.last ?? undefined;
  }

  /** `count` segments (of equal key widths for an integer key, else of about equal rows), the last one open-ended; none for an empty table. */
  async segments(count: number): Promise<{ from: string; to: string | null; cursor: string }[]> {
    const start = await this.start();
    if (start === undefined) return [];
    if (count <= 1) return [{ from: start, to: null, cursor: start }];
    const bounds = /^(smallint|integer|bigint)$/.test(this.keyType ?? '')
      ? await this.evenBounds(start, count)
      : await this.percentileBounds(count);
    const edges = [start, ...new Set(bounds)];
    return edges.map((from, i) => ({ from, to: edges[i + 1] ?? null, cursor: from }));
  }

  /**
   * An integer key's range cut in `count` equal widths: two index lookups, where percentiles
   * read and sort every key (on Citus, every key pulled to the coordinator).
   */
  private async evenBounds(start: string, count: number): Promise<string[]> {
    const last = await this.lastKey();
    if (last === undefined) return [];
    const [from, to] = [BigInt(start), BigInt(last)];
    return Array.from({ length: count - 1 }, (_, i) => (from + ((to - from) * BigInt(i + 1)) / BigInt(count)).toString()).filter(
      (b) => BigInt(b) > from && BigInt(b) < to,
    );
  }

  /** Bounds of `count` segments of about equal rows, for keys without arithmetic (text, uuid, date/time). */
  private async percentileBounds(count: number): Promise<string[]> {
    const fractions = Array.from({ length: count - 1 }, (_, i) => (i + 1) / count);
    const result = await sql<{ bounds: string[] | null }>`
      SELECT (percentile_disc(${fractions}::float8[]) WITHIN GROUP (ORDER BY ${this.key}))::text[] AS bounds FROM ${this.table}`.execute(
      this.session.db,
    );
    return result.rows[0]?.bounds ?? [];
  }

  /** The planner's estimate when over a million rows (a Citus table's from its shards), else an exact count. */
  async estimateTotal(): Promise<number> {
    const estimate = await sql<{
      n: number;
    }>`SELECT greatest(reltuples, 0)::bigint AS n FROM pg_class WHERE oid = ${this.batch.table}::regclass`.execute(this.session.db);
    let n = Number(estimate.rows[0]?.n ?? 0);
    if (n === 0) n = (await citusRowEstimate(this.session, this.batch.table)) ?? 0;
    if (n > 1_000_000) return n;
    const exact = await sql<{ n: number }>`SELECT count(*) AS n FROM ${this.table}`.execute(this.session.db);
    return Number(exact.rows[0]?.n ?? 0);
  }
}

function unquote(identifier: string): string {
  return identifier.startsWith('"') ? identifier.slice(1, -1).replace(/""/g, '"') : identifier.toLowerCase();
}

/** SQL for a value of the key's type below every key (NULL when the type has none we know). */
function belowExpression(keyType: string): string {
  if (/^(smallint|integer|bigint|numeric.*|real|double precision)$/.test(keyType)) return '(first - 1)::text';
  if (/^(timestamp|date)/.test(keyType)) return `'-infinity'::${keyType}::text`;
  if (/^(text|character varying.*|character.*|citext)$/.test(keyType)) return `''::text`;
  if (keyType === 'uuid') return `'00000000-0000-0000-0000-000000000000'::text`;
  return 'NULL::text';
}
