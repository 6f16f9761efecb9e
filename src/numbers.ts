/**
 * A count as people read it: `12,345`, what `toLocaleString('en-US')` writes for an integer.
 * Written out rather than asked of Intl: a process's first toLocaleString loads ICU's locale
 * data, about 40 ms of CPU at a batched backfill's first progress line in a short `apply`
 * (bench/small-apply.ts). A number that is not an integer is left to Intl.
 */
export function withThousands(n: number): string {
  if (!Number.isSafeInteger(n)) return n.toLocaleString('en-US');
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}
