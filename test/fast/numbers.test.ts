import { describe, expect, it } from 'vitest';
import { withThousands } from '../../src/numbers.js';

describe('withThousands', () => {
  it("writes what toLocaleString('en-US') writes", () => {
    const values = [0, 7, 999, 1000, 12_345, 999_999, 1_000_000, 3002, -1, -1234, -1_234_567, Number.MAX_SAFE_INTEGER, 1.5, 1234.5678];
    for (const n of values) expect(withThousands(n), String(n)).toBe(n.toLocaleString('en-US'));
  });
});
