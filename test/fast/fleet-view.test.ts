import { describe, expect, it } from 'vitest';
import { compactProgress, fleetJson } from '../../src/ui/fleet-view.js';

describe('the fleet view', () => {
  it("shows a backfill's progress, rate and ETA in a board line's room", () => {
    expect(compactProgress({ rowsDone: 1024, rowsTotal: 3000, rowsPerSecond: 800 } as never)).toBe(
      '1,024/~3,000 rows 34%, 800 rows/s, ETA ~3s',
    );
    // Past the planner's estimate: only the rows done.
    expect(compactProgress({ rowsDone: 3500, rowsTotal: 3000, rowsPerSecond: 0 } as never)).toBe('3,500 rows');
  });

  it("prints the contract's fields for every target", () => {
    const json = fleetJson({
      exitCode: 1,
      held: 'stopped-on-error',
      targets: [
        {
          name: 'a',
          status: 'failed',
          applied: 3,
          pending: 1,
          unit: '0004_x',
          error: { code: 'unit-failed', message: 'm', exitCode: 1, hint: null },
          exitCode: 1,
          ran: ['0003_y'],
        },
        {
          name: 'b',
          status: 'skipped',
          applied: null,
          pending: null,
          unit: null,
          error: null,
          exitCode: 0,
          ran: [],
          held: 'stopped-on-error',
        },
      ],
    });
    for (const target of json.targets)
      expect(Object.keys(target)).toEqual(expect.arrayContaining(['name', 'status', 'applied', 'pending', 'unit', 'error']));
    expect(json.targets[1]).toMatchObject({ name: 'b', status: 'skipped', held: 'stopped-on-error', error: null });
  });
});
