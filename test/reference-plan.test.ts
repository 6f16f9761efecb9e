/**
 * The reference plan (top-level migrations/ backfills/ rollbacks/) on its fixture: killed
 * with SIGKILL at spread-out moments of an apply, then resumed, it must reach exactly the
 * content of an uninterrupted run, and pass its verify. The kills fall on one database, one
 * after another: each run resumes what the kill before it left and is killed in its turn, so
 * the eight kills cost about one apply of the plan instead of eight, and each resume (a
 * killed one too) is itself resumed. The first kill comes while the run waits on a lock
 * (test/scenarios.test.ts kills the other seed plans that way). The plan runs from a copy
 * without the throttle's pauses (twice as long as each batch): the kills land on batches,
 * not on sleeps, and the two applies take less time.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/plan/config.js';
import { loadPlan } from '../src/plan/load.js';
import { runCli, type CliResult } from './support/cli.js';
import { fixtureTemplate } from './support/db.js';
import { unthrottledPlan } from './support/fixtures.js';
import { killRepeatedlyThenResume, uninterrupted } from './support/kill.js';

const root = unthrottledPlan(fileURLToPath(new URL('..', import.meta.url)));
const fixture = fileURLToPath(new URL('../fixtures/hosts-to-organizations/legacy.sql', import.meta.url));

describe('the reference plan, killed at many points', () => {
  let template = '';
  let drop = async () => {};
  beforeAll(async () => {
    const t = await fixtureTemplate(fixture, 'tplref');
    template = t.name;
    drop = t.drop;
  });
  afterAll(() => drop());

  // Two runs of the whole plan, one of them killed eight times: longer than the suite's default timeout.
  it('resumes to the content of an uninterrupted run, wherever the kill lands', { timeout: 300_000 }, async () => {
    const baseline = await uninterrupted(template, root, { measureStart: true });
    const units = (await loadPlan(root, await loadConfig(root))).length;
    // The first kill while the run waits on a lock at the first unit that touches the
    // application's tables. Then each run is killed once it has done its share of the plan's
    // work (the fractions of the uninterrupted run, one after another), after what it costs to start.
    const points = [0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95];
    const work = Math.max(0, baseline.durationMs - baseline.startMs);
    const delays = points.map((f, i) => Math.round(baseline.startMs + (f - (points[i - 1] ?? 0)) * work));
    let verified: CliResult | undefined;
    const outcome = await killRepeatedlyThenResume(template, root, delays, {
      blockedFirst: true,
      after: async (url) => void (verified = await runCli(['verify', '-d', url, '--dir', root, '--json'])),
    });
    const states = outcome.kills.map((k) => k.statusesAtKill);
    expect(outcome.fingerprint, `killed after ${delays.join(', ')} ms with units ${states.join(' | ')}`).toEqual(baseline.fingerprint);
    // The blocked run was killed mid-run: a ledger with a unit running, or some applied and some not.
    const atBlock = (states[0] ?? '').split(',');
    expect(atBlock.filter((s) => s === 'applied').length).toBeLessThan(units);
    expect(atBlock.every((s) => s === 'applied' || s === 'running')).toBe(true);
    // The kills landed at different points of the plan, at least one of them inside a unit.
    expect(new Set(states).size).toBeGreaterThan(2);
    expect(states.some((s) => s.includes('running'))).toBe(true);
    // And the resumed database passes its verify.
    const checks = (JSON.parse(verified?.stdout ?? '{}') as { checks?: { ok: boolean }[] }).checks ?? [];
    expect(checks.length).toBeGreaterThan(0);
    expect(checks.every((c) => c.ok)).toBe(true);
    expect(verified?.code).toBe(0);
  });
});
