/**
 * The five seed scenarios end to end: each fixture with its plan rehearsed (apply, verify,
 * full rollback back to exactly the legacy schema and content, apply again, verify), and
 * killed with SIGKILL during apply, then resumed to a passing verify. The rehearsals run
 * without the throttle's pauses, hosts-to-organizations at a tenth of its size (the reference
 * plan's own test, test/reference-plan.test.ts, applies it at full size).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/plan/config.js';
import { loadPlan } from '../src/plan/load.js';
import { dropAfterAll, freshDatabase, query, serverUrl } from './support/db.js';
import { runCli } from './support/cli.js';
import { smallHostsSeed, unthrottledPlan } from './support/fixtures.js';
import { killWhileBlocked } from './support/kill.js';
import { ledgerStatuses } from './support/ledger.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const scenarios: { name: string; dir: string }[] = [
  { name: 'hosts-to-organizations', dir: repo },
  { name: 'restaurant-platform', dir: `${repo}fixtures/restaurant-platform` },
  { name: 'ai-saas-subscriptions', dir: `${repo}fixtures/ai-saas-subscriptions` },
  { name: 'customers-to-organizations', dir: `${repo}fixtures/customers-to-organizations` },
  { name: 'organization-modules', dir: `${repo}fixtures/organization-modules` },
];

describe.each(scenarios)('scenario $name', ({ name, dir }) => {
  it('rehearses: apply, verify, roll back to exactly the legacy state, apply again, verify', async () => {
    const fixture = dir === repo ? smallHostsSeed() : `${repo}fixtures/${name}/legacy.sql`;
    const result = await runCli(['rehearse', '--fixture', fixture, '--dir', unthrottledPlan(dir), '--json'], {
      env: { TENANTIFY_REHEARSE_SERVER_URL: serverUrl() },
    });
    const doc = JSON.parse(result.stdout) as { ok: boolean; steps: { name: string; ok: boolean; details: string[] }[] };
    const failed = doc.steps.find((s) => !s.ok);
    expect(failed?.details ?? [], `step ${failed?.name}`).toEqual([]);
    expect(doc.steps.map((s) => s.name)).toEqual([
      'load',
      'apply',
      'verify',
      'rollback',
      'compare with the source',
      'apply again',
      'verify again',
    ]);
    expect(result.code).toBe(0);
  });
});

// The reference plan (hosts-to-organizations) is killed the same way, and seven times more,
// by test/reference-plan.test.ts: its resumed content compared with an uninterrupted run's.
describe.each(scenarios.filter((s) => s.dir !== repo))('scenario $name', ({ name, dir }) => {
  const fixture = `${repo}fixtures/${name}/legacy.sql`;
  const dropped = dropAfterAll();

  it('killed during apply, resumes to a passing verify', async () => {
    const db = dropped(await freshDatabase('sc'));
    await query(db.url, readFileSync(fixture, 'utf8'));
    const units = await loadPlan(dir, await loadConfig(dir));
    // The application's tables locked (reads still pass) before the run starts: it waits at
    // the first unit that writes or references one, mid-run, and is killed there.
    const killed = await killWhileBlocked(db.url, ['--dir', dir, '--no-snapshot']);
    expect(killed.signal, `exit ${killed.code}: ${killed.stderr}`).toBe('SIGKILL');
    // The kill landed mid-run: a unit running, or some applied and some not.
    const atKill = Object.values(await ledgerStatuses(db.url));
    expect(atKill.length).toBeGreaterThan(0);
    expect(atKill.filter((s) => s === 'applied').length).toBeLessThan(units.length);
    expect(atKill.every((s) => s === 'applied' || s === 'running')).toBe(true);
    const resumed = await runCli(['apply', '-d', db.url, '--dir', dir, '--no-snapshot']);
    expect(resumed.stderr).not.toMatch(/^error/m);
    expect(resumed.code).toBe(0);
    const verified = await runCli(['verify', '-d', db.url, '--dir', dir, '--json']);
    const checks = (JSON.parse(verified.stdout) as { checks: { ok: boolean }[] }).checks;
    expect(checks.length).toBeGreaterThan(0);
    expect(checks.every((c) => c.ok)).toBe(true);
    expect(verified.code).toBe(0);
  });
});

describe('restaurant-platform diners backfill', () => {
  const dir = `${repo}fixtures/restaurant-platform`;

  it("makes each diner from the guest's first record, whatever order its batches run in", async () => {
    const db = await freshDatabase('sd');
    try {
      await query(db.url, readFileSync(`${dir}/legacy.sql`, 'utf8'));
      const upTo = await runCli(['apply', '-d', db.url, '--dir', dir, '--no-snapshot', '--to', '0007_create_subscriptions']);
      expect(upTo.code, upTo.stderr).toBe(0);
      const unit = (await loadPlan(dir, await loadConfig(dir))).find((u) => u.id === '0008_migrate_customers_to_diners');
      expect(unit?.statements).toHaveLength(1);
      const [range] = await query<{ lo: number; hi: number }>(db.url, 'SELECT min(id) - 1 AS lo, max(id) AS hi FROM customers');
      const { lo, hi } = range!;
      // Small batches, the newest first: what parallel workers may do to a guest whose records span batches.
      for (let upper = hi; upper > lo; upper -= 100) await query(db.url, [...unit!.statements][0]!.sql, [Math.max(lo, upper - 100), upper]);
      const spanning = await query(
        db.url,
        'SELECT email FROM customers WHERE email IS NOT NULL GROUP BY email HAVING max(id) - min(id) >= 100',
      );
      expect(spanning.length).toBeGreaterThan(0);
      for (const check of unit!.verifies) expect(await query(db.url, check.sql), check.name).toEqual([]);
    } finally {
      await db.drop();
    }
  });
});
