/**
 * The fleet's scheduler, pure: which targets start now, from where each one stands. The
 * runner (app/fleet.ts) asks it after every target that ends; it touches nothing.
 *
 * - The first `canary` targets run alone, first: the others start only once every canary
 *   has succeeded, and a canary that fails stops the fleet (whatever `onError` says).
 * - `onError: 'stop'`: after a failure no target starts; `continue` goes on.
 * - At most `atOnce` targets run at the same time.
 */

export type TargetPhase = 'waiting' | 'running' | 'succeeded' | 'failed';

export interface ScheduleOptions {
  /** The first N targets go first, alone. */
  canary: number;
  /** Targets at once (see connectionBudget). */
  atOnce: number;
  onError: 'stop' | 'continue';
}

/** Why a waiting target will not start, or undefined while it still may. */
export type Held = 'canary-failed' | 'stopped-on-error' | 'interrupted';

/** The waiting targets to start now (indexes, in the order of the targets). */
export function targetsToStart(phases: TargetPhase[], options: ScheduleOptions, interrupted = false): number[] {
  if (heldBack(phases, options, interrupted)) return [];
  const canaries = Math.min(options.canary, phases.length);
  const canariesDone = phases.slice(0, canaries).every((p) => p === 'succeeded');
  const open = Math.max(0, options.atOnce - phases.filter((p) => p === 'running').length);
  const waiting = phases.flatMap((p, i) => (p === 'waiting' && (canariesDone || i < canaries) ? [i] : []));
  return waiting.slice(0, open);
}

/** Why no waiting target may start any more (undefined: they may, as slots free). */
export function heldBack(phases: TargetPhase[], options: ScheduleOptions, interrupted = false): Held | undefined {
  if (interrupted) return 'interrupted';
  if (phases.slice(0, options.canary).includes('failed')) return 'canary-failed';
  if (options.onError === 'stop' && phases.includes('failed')) return 'stopped-on-error';
  return undefined;
}

/**
 * `--parallel N` caps the connections the fleet opens. A target's apply holds one session,
 * and a batched backfill works with that one plus a connection per further worker: so
 * min(N, targets) targets run at once, each with N / that many backfill workers (at least 1).
 */
export function connectionBudget(parallel: number, targets: number): { atOnce: number; workersPerTarget: number } {
  const atOnce = Math.max(1, Math.min(parallel, targets));
  return { atOnce, workersPerTarget: Math.max(1, Math.floor(parallel / atOnce)) };
}
