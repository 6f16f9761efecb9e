/**
 * The reference plan (top-level migrations/ backfills/ rollbacks/) on its fixture: killed
 * with SIGKILL at spread-out moments of an apply, then resumed, it must reach exactly the
 * content of an uninterrupted run.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureTemplate } from './support/db.js';
import { killThenResume, uninterrupted } from './support/kill.js';

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

  // Eight runs of the whole plan and seven kills: longer than the suite's default timeout.
  it('resumes to the content of an uninterrupted run, wherever the kill lands', { timeout: 300_000 }, async () => {
    const baseline = await uninterrupted(template, root);
    const points = [0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95].map((f) => Math.round(baseline.durationMs * f));
    const states: string[] = [];
    for (const delay of points) {
      const outcome = await killThenResume(template, root, delay);
      expect(outcome.fingerprint, `killed at ${delay} ms with units ${outcome.statusesAtKill}`).toEqual(baseline.fingerprint);
      states.push(outcome.statusesAtKill);
    }
    // The kills landed at different points of the plan, at least one of them inside a unit.
    expect(new Set(states).size).toBeGreaterThan(2);
    expect(states.some((s) => s.includes('running'))).toBe(true);
  });
});
