/** Stepping a Citus table's integer key (src/exec/key-steps.ts): pure arithmetic, no database. */
import { describe, expect, it } from 'vitest';
import { keyDensity, stepUpper } from '../../src/exec/key-steps.js';

describe('key steps', () => {
  it('density: rows per key value over the key range, at most 1', () => {
    expect(keyDensity(150_000, 1n, 150_000n)).toBe(1);
    expect(keyDensity(50_000, 1n, 200_000n)).toBe(0.25);
    expect(keyDensity(0, 1n, 10n)).toBe(1); // no statistics yet: one key a row, the pace grows the batches
    expect(keyDensity(500, 5n, 4n)).toBe(1);
  });

  it('a batch spans the keys that hold its rows at that density, within the segment and the last key', () => {
    expect(stepUpper(0n, 5000, 1, 150_000n, null)).toBe(5000n);
    expect(stepUpper(0n, 5000, 0.25, 150_000n, null)).toBe(20_000n);
    expect(stepUpper(148_000n, 5000, 1, 150_000n, null)).toBe(150_000n);
    expect(stepUpper(70_000n, 5000, 1, 150_000n, 72_000n)).toBe(72_000n);
    expect(stepUpper(-1n, 1, 1e-9, 9_000_000_000n, null)).toBe(999_999_999n);
  });

  it('none past the segment or the last key known (the caller reads the last key again)', () => {
    expect(stepUpper(150_000n, 5000, 1, 150_000n, null)).toBeUndefined();
    expect(stepUpper(72_000n, 5000, 1, 150_000n, 72_000n)).toBeUndefined();
    expect(stepUpper(160_000n, 5000, 1, 150_000n, null)).toBeUndefined();
  });
});
