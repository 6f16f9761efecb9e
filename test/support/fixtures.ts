/**
 * Seed fixtures sized for tests that need their shape, not their size. The reference plan's
 * own test (test/reference-plan.test.ts) and tenancy analyze's figures keep the full seed;
 * sizes that matter for speed belong in bench/.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/** The copies this file made (a plan's snapshots land in its copy), removed when the test file ends. */
const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

function scratch(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

const hostsSeed = new URL('../../fixtures/hosts-to-organizations/legacy.sql', import.meta.url);

/** Each number of the seed that sets its size, with how often it appears: a changed seed fails here, not in a test. */
const hostsSizes: { full: string; small: string; times: number }[] = [
  // Users 1..20408 (and the comment saying so); the audit log's user ids wrap at the same bound. 2041 % 51 is not 0, as
  // 20408's is not: an audit entry's "next id" after a deleted user is still a user.
  { full: '20408', small: '2041', times: 5 },
  // Host ids an audit entry points at (some deleted since): about as many as there are hosts.
  { full: '52000', small: '5200', times: 1 },
  // Audit entries.
  { full: '30000', small: '3000', times: 1 },
];

let smallHosts: string | undefined;

/**
 * fixtures/hosts-to-organizations/legacy.sql at a tenth of its size (about 2,000 users,
 * 5,000 hosts, 3,000 audit entries), every edge case kept: deleted ids, NULL and shared
 * emails, users without hosts, heavy users with 60 hosts (ids 1, 998, 1995), system audit
 * entries. The reference plan's users and hosts backfills still start more than one batch
 * (2,000 users, 5,000 hosts per batch); those of organizations and audit_logs start one.
 * Written once per test file; returns its path.
 */
export function smallHostsSeed(): string {
  if (smallHosts) return smallHosts;
  let sql = readFileSync(hostsSeed, 'utf8');
  for (const { full, small, times } of hostsSizes) {
    const found = sql.split(full).length - 1;
    if (found !== times) throw new Error(`fixtures/hosts-to-organizations/legacy.sql: ${full} appears ${found} times, not ${times}`);
    sql = sql.replaceAll(full, small);
  }
  smallHosts = join(scratch('tenantify-seed-'), 'legacy.sql');
  writeFileSync(smallHosts, sql);
  return smallHosts;
}

/**
 * A copy of the plan in `dir` (migrations/, backfills/, rollbacks/, its tenantify.config.json)
 * whose batched backfills run without the throttle's duty-cycle pauses (a pause twice as long as each
 * batch by default), for tests that are not about yielding to an application. Returns its path.
 */
export function unthrottledPlan(dir: string): string {
  const copy = scratch('tenantify-plan-');
  for (const folder of ['migrations', 'backfills', 'rollbacks'])
    if (existsSync(join(dir, folder))) cpSync(join(dir, folder), join(copy, folder), { recursive: true });
  const configFile = join(dir, 'tenantify.config.json');
  const config = existsSync(configFile) ? (JSON.parse(readFileSync(configFile, 'utf8')) as { batch?: object }) : {};
  writeFileSync(join(copy, 'tenantify.config.json'), JSON.stringify({ ...config, batch: { ...config.batch, throttle: 'off' } }));
  return copy;
}
