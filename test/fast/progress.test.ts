/** A backfill's progress line: the total is the planner's estimate, and says so. */
import { describe, expect, it } from 'vitest';
import { formatProgress } from '../../src/ui/reporter.js';

describe('formatProgress', () => {
  it('marks the estimated total as an estimate', () => {
    expect(formatProgress({ rowsDone: 4735, rowsTotal: 30000, rowsPerSecond: 1000 } as never)).toBe(
      '4,735 of ~30,000 rows (estimated total), 16%, 1,000 rows/s, ETA ~26s',
    );
  });

  it('shows the rows done alone once they pass the estimate', () => {
    expect(formatProgress({ rowsDone: 31000, rowsTotal: 30000 } as never)).toBe('31,000 rows');
  });

  it('without an estimate, the rows done', () => {
    expect(formatProgress({ rowsDone: 12 } as never)).toBe('12 rows');
  });
});
