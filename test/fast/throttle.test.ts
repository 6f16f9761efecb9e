/**
 * The batched backfill's throttle: decisions from measured inputs (no database, no clock),
 * and how the plan and a unit configure it.
 */
import { describe, expect, it } from 'vitest';
import {
  activeLimit,
  decide,
  defaultThrottle,
  dutyPause,
  lockWaitFloor,
  probeLimit,
  type Decision,
  type AppCost,
  type Limits,
  type Pacing,
} from '../../src/exec/throttle.js';
import { batchSettings, throttleSettings } from '../../src/app/apply.js';
import { defaultBatchSettings, defaultParallel, Pace, type SharedAim } from '../../src/exec/batched.js';
import { parseDirectives } from '../../src/plan/directives.js';
import { configSchema } from '../../src/plan/config.js';
import { PlanError } from '../../src/errors.js';
import { formatProgress } from '../../src/ui/reporter.js';

const idle = { probeMs: 1, activeSessions: 1 };
const limits: Limits = { targetMs: 300, pauseMs: 0, maxReplicationLagMs: 10_000, throttle: defaultThrottle, idle };
const calm: AppCost = { probeMs: 1, lockWaiters: 0, activeSessions: 1, replicationLagMs: 0 };
const start: Pacing = { size: 5000, backoffMs: 0 };

describe('decide', () => {
  it('with the application served, sizes toward the target and pauses for the duty cycle only', () => {
    const d = decide(start, { durationMs: 150, cost: calm }, limits);
    expect(d.size).toBe(10_000);
    expect(d.pauseMs).toBe(300); // duty 1/3: twice the batch
    expect(d.reason).toBeUndefined();
  });

  it('a slow probe halves the batch and pauses, saying why; the backoff grows while it stays slow, then decays', () => {
    const busy = { durationMs: 300, cost: { ...calm, probeMs: 40 } };
    const first = decide(start, busy, limits);
    expect(first.size).toBe(2500);
    expect(first.pauseMs).toBe(600);
    expect(first.reason).toMatch(
      /probe query took 40 ms \(limit 5\.0 ms, 1\.0 ms before the backfill\).*batch size down to 2500, pausing 600 ms/,
    );
    const second = decide(first, busy, limits);
    expect(second.size).toBe(1250);
    expect(second.pauseMs).toBe(1200);
    const capped = decide({ size: 100, backoffMs: 4000 }, busy, limits);
    expect(capped.pauseMs).toBe(defaultThrottle.maxPauseMs);
    const after = decide(second, { durationMs: 100, cost: calm }, limits);
    expect(after.reason).toBeUndefined();
    expect(after.backoffMs).toBe(600);
    expect(after.pauseMs).toBe(600);
    expect(after.size).toBe(1250); // no bigger while the backoff lasts
    let pacing: Pacing = after;
    while (pacing.backoffMs > 0) pacing = decide(pacing, { durationMs: 100, cost: calm }, limits);
    expect(pacing.size).toBe(1250);
    expect(decide(pacing, { durationMs: 100, cost: calm }, limits).size).toBe(2500); // then back toward the target: at most doubling
  });

  it('the probe limit is 4x the idle latency, at least 5 ms, unless configured', () => {
    expect(probeLimit({ throttle: defaultThrottle, idle: { probeMs: 0.3, activeSessions: 0 } })).toBe(5);
    expect(probeLimit({ throttle: defaultThrottle, idle: { probeMs: 3, activeSessions: 0 } })).toBe(12);
    expect(probeLimit({ throttle: { ...defaultThrottle, probeLimitMs: 50 }, idle: { probeMs: 30, activeSessions: 0 } })).toBe(50);
    const at3 = { ...limits, idle: { probeMs: 3, activeSessions: 1 } };
    expect(decide(start, { durationMs: 300, cost: { ...calm, probeMs: 11.9 } }, at3).reason).toBeUndefined();
    expect(decide(start, { durationMs: 300, cost: { ...calm, probeMs: 12.1 } }, at3).reason).toMatch(/probe/);
  });

  it('the application sessions piling up slow it down: past twice as many as before the backfill, and two more', () => {
    expect(activeLimit({ probeMs: 1, activeSessions: 0 })).toBe(2);
    expect(activeLimit({ probeMs: 1, activeSessions: 1 })).toBe(3);
    expect(activeLimit({ probeMs: 1, activeSessions: 10 })).toBe(20);
    expect(decide(start, { durationMs: 300, cost: { ...calm, activeSessions: 3 } }, limits).reason).toBeUndefined();
    const piled = decide(start, { durationMs: 300, cost: { ...calm, activeSessions: 4 } }, limits);
    expect(piled.reason).toMatch(/^4 application sessions active \(limit 3, 1 before the backfill\): batch size down to 2500/);
    expect(piled.pauseMs).toBe(600);
    const off = { ...limits, throttle: { ...defaultThrottle, enabled: false } };
    expect(decide(start, { durationMs: 300, cost: { ...calm, activeSessions: 40 } }, off).reason).toBeUndefined();
  });

  it('lock waiters and replica lag slow it down even with the throttle off; a slow probe does not then', () => {
    const off = { ...limits, throttle: { ...defaultThrottle, enabled: false } };
    const locked = decide(start, { durationMs: 300, cost: { ...calm, lockWaiters: 2 } }, off);
    expect(locked.reason).toMatch(/^2 session\(s\) wait on the batch's locks/);
    expect(locked.size).toBe(2500);
    const lagging = decide(start, { durationMs: 300, cost: { ...calm, replicationLagMs: 30_000 } }, off);
    expect(lagging.reason).toMatch(/a replica lags 30000 ms/);
    expect(lagging.pauseMs).toBe(10_000);
    const slowProbe = decide(start, { durationMs: 300, cost: { ...calm, probeMs: 500 } }, off);
    expect(slowProbe.reason).toBeUndefined();
    expect(slowProbe.pauseMs).toBe(0); // no duty cycle either
  });

  it('the first lock wait lowers the duration batches aim at to an eighth of the target, for the rest of the walk', () => {
    const waited = (pacing: Pacing, durationMs: number): Decision =>
      decide(pacing, { durationMs, cost: { ...calm, lockWaiters: 1 } }, limits);
    const served = (pacing: Pacing, durationMs: number): Decision => decide(pacing, { durationMs, cost: calm }, limits);
    const first = waited(start, 300);
    expect(first.targetMs).toBe(limits.targetMs * lockWaitFloor);
    expect(lockWaitFloor * limits.targetMs).toBe(37.5);
    expect(first.size).toBe(2500);
    // It goes no lower on later waits.
    let pacing: Pacing = first;
    for (let i = 0; i < 5; i++) pacing = waited(pacing, 300);
    expect(pacing.targetMs).toBe(37.5);
    // Served batches keep the lowered target: once the backoff is over, sizes settle at what takes 37.5 ms, not 300.
    for (let i = 0; i < 30; i++) pacing = served(pacing, (pacing.size / 5000) * 300);
    expect(pacing.targetMs).toBe(37.5);
    expect(pacing.backoffMs).toBe(0);
    expect(pacing.size).toBe(625);
    // Without lock waits the unit's target holds, whatever else throttles.
    const busy = decide(start, { durationMs: 300, cost: { ...calm, probeMs: 40 } }, limits);
    expect(busy.targetMs).toBeUndefined();
    expect(served(busy, 150).targetMs).toBeUndefined();
  });

  it('the configured pause is a floor, and duty 1 means no pause of its own', () => {
    expect(decide(start, { durationMs: 100, cost: calm }, { ...limits, pauseMs: 250 }).pauseMs).toBe(250);
    expect(dutyPause(100, 1)).toBe(0);
    expect(dutyPause(100, 0.25)).toBe(300);
  });
});

describe('throttle settings', () => {
  it('batch.throttle in the config: off, or its settings over the defaults', () => {
    expect(throttleSettings(undefined)).toEqual(defaultThrottle);
    expect(throttleSettings('off').enabled).toBe(false);
    const parsed = configSchema.parse({ batch: { throttle: { probeLatency: '20ms', duty: 0.25, maxPause: '2s' } } });
    expect(throttleSettings(parsed.batch.throttle)).toEqual({ enabled: true, probeLimitMs: 20, duty: 0.25, maxPauseMs: 2000 });
    expect(configSchema.safeParse({ batch: { throttle: { duty: 0 } } }).success).toBe(false);
    expect(configSchema.safeParse({ batch: { throttle: { duty: 1.5 } } }).success).toBe(false);
    expect(configSchema.safeParse({ batch: { throttle: { speed: 1 } } }).success).toBe(false);
  });

  it('one worker by default while throttled; with the throttle off, the client cores, 2 to 4; --parallel and batch.parallel over both', () => {
    expect(defaultParallel(true, 8)).toBe(1);
    expect([1, 3, 16].map((cores) => defaultParallel(false, cores))).toEqual([2, 3, 4]);
    expect(defaultBatchSettings.parallel).toBe(1);
    const config = (batch: unknown) => configSchema.parse({ batch }).batch;
    expect(batchSettings(config({})).parallel).toBe(1);
    expect(batchSettings(config({ throttle: 'off' })).parallel).toBe(defaultParallel(false));
    expect(batchSettings(config({ parallel: 3 })).parallel).toBe(3);
    expect(batchSettings(config({ parallel: 3 }), 2).parallel).toBe(2);
  });

  it("a unit's throttle directive: off, or any of probe, duty, max-pause; a bad one is a plan error naming the line", () => {
    const parse = (value: string) =>
      parseDirectives('backfills/0002_fill.sql', [{ name: 'throttle', value, line: 3 }], {
        lockTimeoutMs: undefined,
        statementTimeoutMs: undefined,
        retries: 0,
      }).throttle;
    expect(parse('off')).toEqual({ enabled: false });
    expect(parse('probe=20ms duty=0.3')).toEqual({ enabled: true, probeLimitMs: 20, duty: 0.3 });
    expect(parse('max-pause=10s')).toEqual({ enabled: true, maxPauseMs: 10_000 });
    for (const bad of ['duty=0', 'duty=2', 'probe=fast', 'speed=1', 'duty=0.5 duty=0.4']) {
      try {
        parse(bad);
        expect.unreachable(`throttle ${bad} was accepted`);
      } catch (error) {
        expect(error).toBeInstanceOf(PlanError);
        expect((error as PlanError).exitCode).toBe(2);
        expect((error as PlanError).line).toBe(3);
        expect((error as PlanError).code).toBe('directive-invalid');
      }
    }
  });
});

describe('the progress line', () => {
  it('says why the backfill is throttled while it is, and nothing of it once it is not', () => {
    const reason = decide(start, { durationMs: 300, cost: { ...calm, lockWaiters: 1 } }, limits).reason;
    const line = formatProgress({ rowsDone: 5000, rowsTotal: 10_000, rowsPerSecond: 1000, throttled: reason });
    expect(line).toMatch(
      /; throttled: 1 session\(s\) wait on the batch's locks \(batches now aim at 38 ms\): batch size down to 2500, pausing 600 ms$/,
    );
    expect(formatProgress({ rowsDone: 5000, rowsTotal: 10_000, rowsPerSecond: 1000 })).not.toContain('throttled');
  });
});

describe("a walk's workers", () => {
  it('share the lowered target: a wait on one worker shortens the batches of every worker of the walk', () => {
    const settings = { ...defaultBatchSettings, throttle: { ...defaultThrottle, duty: 1 } };
    const aim: SharedAim = {};
    const first = new Pace(5000, settings, aim);
    const second = new Pace(5000, settings, aim);
    expect(second.next(100, calm).targetMs).toBeUndefined();
    expect(first.next(300, { ...calm, lockWaiters: 1 }).targetMs).toBe(37.5);
    expect(aim.targetMs).toBe(37.5);
    // The other worker's next batch is sized toward 37.5 ms though nothing waited on it: halved at most per batch.
    const after = second.next(300, calm);
    expect(after.targetMs).toBe(37.5);
    expect(after.size).toBe(5000);
    // A worker of another walk keeps the unit's target.
    expect(new Pace(5000, settings).next(300, calm).targetMs).toBeUndefined();
  });
});
