import { describe, expect, it } from 'vitest';
import { connectionBudget, heldBack, targetsToStart, type ScheduleOptions, type TargetPhase } from '../../src/fleet/schedule.js';

const phases = (text: string): TargetPhase[] =>
  [...text].map((c) => ({ w: 'waiting', r: 'running', s: 'succeeded', f: 'failed' })[c] as TargetPhase);
const options = (o: Partial<ScheduleOptions> = {}): ScheduleOptions => ({ canary: 0, atOnce: 2, onError: 'stop', ...o });

describe('targetsToStart', () => {
  it('fills the free slots with the first waiting targets, in order', () => {
    expect(targetsToStart(phases('wwww'), options())).toEqual([0, 1]);
    expect(targetsToStart(phases('srww'), options())).toEqual([2]);
    expect(targetsToStart(phases('rrww'), options())).toEqual([]);
    expect(targetsToStart(phases('ssss'), options())).toEqual([]);
    expect(targetsToStart(phases('wwww'), options({ atOnce: 9 }))).toEqual([0, 1, 2, 3]);
  });

  it('runs the canaries alone first, and the others once every canary succeeded', () => {
    const canary = options({ canary: 2, atOnce: 4 });
    expect(targetsToStart(phases('wwwww'), canary)).toEqual([0, 1]);
    expect(targetsToStart(phases('srwww'), canary)).toEqual([]);
    expect(targetsToStart(phases('sswww'), canary)).toEqual([2, 3, 4]);
  });

  it('stops the fleet when a canary fails, even with --on-error continue', () => {
    const canary = options({ canary: 1, atOnce: 4, onError: 'continue' });
    expect(targetsToStart(phases('fwww'), canary)).toEqual([]);
    expect(heldBack(phases('fwww'), canary)).toBe('canary-failed');
  });

  it('starts nothing more after a failure with stop, and goes on with continue', () => {
    expect(targetsToStart(phases('frww'), options())).toEqual([]);
    expect(heldBack(phases('frww'), options())).toBe('stopped-on-error');
    expect(targetsToStart(phases('frww'), options({ onError: 'continue' }))).toEqual([2]);
    expect(heldBack(phases('frww'), options({ onError: 'continue' }))).toBeUndefined();
  });

  it('starts nothing once interrupted', () => {
    expect(targetsToStart(phases('swww'), options(), true)).toEqual([]);
    expect(heldBack(phases('swww'), options(), true)).toBe('interrupted');
  });
});

describe('connectionBudget', () => {
  it('never plans more connections than --parallel: targets at once times backfill workers each', () => {
    for (const parallel of [1, 2, 3, 4, 7, 16]) {
      for (const targets of [1, 2, 3, 8, 50]) {
        const { atOnce, workersPerTarget } = connectionBudget(parallel, targets);
        expect(atOnce * workersPerTarget, `${parallel} over ${targets}`).toBeLessThanOrEqual(parallel);
        expect(atOnce).toBe(Math.min(parallel, targets));
      }
    }
    expect(connectionBudget(8, 2)).toEqual({ atOnce: 2, workersPerTarget: 4 });
    expect(connectionBudget(4, 8)).toEqual({ atOnce: 4, workersPerTarget: 1 });
  });
});
