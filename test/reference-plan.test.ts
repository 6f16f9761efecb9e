/**
 * The reference plan (top-level migrations/ backfills/ rollbacks/) on its fixture: killed
 * with SIGKILL at spread-out moments of an apply, then resumed, it must reach exactly the
 * content of an uninterrupted run. The kills fall on one database, one after another: each
 * run resumes what the kill before it left and is killed in its turn, so the seven kills
 * cost about one apply of the plan instead of seven, and each resume (a killed one too) is
 * itself resumed.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureTemplate } from './support/db.js';
import { killRepeatedlyThenResume, uninterrupted } from './support/kill.js';

const root = fileURLToPath(new URL('..', import.meta.url));
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

  // Two runs of the whole plan, one of them killed seven times: longer than the suite's default timeout.
  it('resumes to the content of an uninterrupted run, wherever the kill lands', { timeout: 300_000 }, async () => {
    const baseline = await uninterrupted(template, root, { measureStart: true });
    // Each run is killed once it has done its share of the plan's work (the fractions of
    // the uninterrupted run, one after another), after what it costs to start.
    const points = [0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95];
    const work = Math.max(0, baseline.durationMs - baseline.startMs);
    const delays = points.map((f, i) => Math.round(baseline.startMs + (f - (points[i - 1] ?? 0)) * work));
    const outcome = await killRepeatedlyThenResume(template, root, delays);
    const states = outcome.kills.map((k) => k.statusesAtKill);
    expect(outcome.fingerprint, `killed after ${delays.join(', ')} ms with units ${states.join(' | ')}`).toEqual(baseline.fingerprint);
    // The kills landed at different points of the plan, at least one of them inside a unit.
    expect(new Set(states).size).toBeGreaterThan(2);
    expect(states.some((s) => s.includes('running'))).toBe(true);
  });
});
