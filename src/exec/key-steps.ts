/**
 * Batches of a Citus distributed table by key arithmetic. On one server the batch's upper
 * bound is the key `size` rows past the cursor, from the key's index
 * (`ORDER BY key OFFSET size - 1 LIMIT 1`). On a Citus coordinator that query runs on every
 * shard, each shard sends its first `size` keys past the cursor, and the coordinator sorts
 * them all to keep one: with 32 shards and batches of 5,000 rows, 160,000 keys cross the
 * network for each batch, more than the batch itself costs. An integer key is stepped
 * instead: a batch spans the key width that holds `size` rows at the table's average density
 * (its rows over its key range, from the shards' statistics), without reading a key. The
 * pace still sizes batches from their durations, and a batch over a gap in the keys is
 * only quick. Keys beyond the last one seen (rows inserted meanwhile) are walked too: the
 * last key is read again when the cursor reaches it.
 */

/** The average number of rows per key value, from a row count and the key's range. */
export function keyDensity(rows: number, first: bigint, last: bigint): number {
  const span = Number(last - first + 1n);
  return span > 0 && rows > 0 ? Math.min(1, rows / span) : 1;
}

/**
 * The inclusive upper bound of the batch after `cursor`: `size` rows at `density` rows per key,
 * within `to` (a segment's end) and the last key known; undefined when the cursor is past
 * both, which the caller checks again against a fresh last key.
 */
export function stepUpper(cursor: bigint, size: number, density: number, last: bigint, to: bigint | null): bigint | undefined {
  const end = to !== null && to < last ? to : last;
  if (cursor >= end) return undefined;
  const width = BigInt(Math.max(1, Math.round(size / density)));
  return cursor + width < end ? cursor + width : end;
}
