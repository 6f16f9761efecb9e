/**
 * The programmatic API as an application uses it: imported from the package (its exports
 * map, the built dist/index.js), against a real PostgreSQL. Build first (`npm run build`).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tenantify from 'tenantify';
import type { Reporter, RevertReporter } from 'tenantify';
import { dropAfterAll, freshDatabase, query, serverUrl } from './support/db.js';
import { ledgerStatuses } from './support/ledger.js';
import { writePlan } from './support/plan-dir.js';

const plan = {
  'migrations/0001_create_teams.sql':
    'CREATE TABLE teams (id int PRIMARY KEY, name text NOT NULL);\n-- tenantify:verify no team without a name\nSELECT id FROM teams WHERE name IS NULL;\n',
  'migrations/0002_seed_teams.sql': "INSERT INTO teams VALUES (1, 'ops');\n",
  'rollbacks/0001_create_teams.sql': 'DROP TABLE teams;\n',
  'rollbacks/0002_seed_teams.sql': 'DELETE FROM teams WHERE id = 1;\n',
};

/** What an application would pass: it records the events it cares about. */
function recorder(): { reporter: Reporter; revertReporter: RevertReporter; events: string[] } {
  const events: string[] = [];
  return {
    events,
    reporter: {
      unitStarted: (entry) => events.push(`started ${entry.unit.id}`),
      unitProgress: () => {},
      unitDone: (unit) => events.push(`done ${unit.id}`),
      unitFailed: (unit) => events.push(`failed ${unit.id}`),
      note: () => {},
    },
    revertReporter: {
      revertStarted: (entry) => events.push(`reverting ${entry.unit.id}`),
      revertDone: (unit) => events.push(`reverted ${unit.id}`),
      revertFailed: (unit) => events.push(`revert failed ${unit.id}`),
      note: () => {},
    },
  };
}

describe('the API from the package', () => {
  const dropped = dropAfterAll();

  it('apply, verify and rollback a plan', async () => {
    const dir = writePlan(plan);
    const { url } = dropped(await freshDatabase('api'));
    const r = recorder();
    const applied = await tenantify.apply({ dir, url, reporter: r.reporter, noSnapshot: true });
    expect(applied.units.map((u) => [u.id, u.outcome])).toEqual([
      ['0001_create_teams', 'applied'],
      ['0002_seed_teams', 'applied'],
    ]);
    expect(r.events).toContain('done 0002_seed_teams');
    expect(await query(url, 'SELECT id, name FROM teams')).toEqual([{ id: 1, name: 'ops' }]);

    const verified = await tenantify.verify({ dir, url });
    expect(verified.ok).toBe(true);
    expect(verified.checks.map((c) => c.name)).toEqual(['no team without a name']);

    const rolledBack = await tenantify.rollback({ dir, url, all: true, reporter: r.revertReporter, confirm: async () => true });
    expect(rolledBack.units.map((u) => u.id)).toEqual(['0002_seed_teams', '0001_create_teams']);
    expect(r.events.slice(-4)).toEqual([
      'reverting 0002_seed_teams',
      'reverted 0002_seed_teams',
      'reverting 0001_create_teams',
      'reverted 0001_create_teams',
    ]);
    expect(await query(url, "SELECT to_regclass('teams') IS NULL AS gone")).toEqual([{ gone: true }]);
    expect(await ledgerStatuses(url)).toEqual({ '0001_create_teams': 'rolled_back', '0002_seed_teams': 'rolled_back' });
  });

  it('a failing unit rejects with a UnitFailedError (exit code 1, a hint) and leaves the database as it was', async () => {
    const dir = writePlan({ ...plan, 'migrations/0002_seed_teams.sql': 'INSERT INTO teams VALUES (1, NULL);\n' });
    const { url } = dropped(await freshDatabase('api'));
    const r = recorder();
    const error = await tenantify.apply({ dir, url, reporter: r.reporter, noSnapshot: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(tenantify.UnitFailedError);
    expect(error).toBeInstanceOf(tenantify.TenantifyError);
    const failure = error as InstanceType<typeof tenantify.UnitFailedError>;
    expect(failure.exitCode).toBe(tenantify.ExitCode.unitFailed);
    expect(failure.message).toBe(
      'unit 0002_seed_teams failed: null value in column "name" of relation "teams" violates not-null constraint',
    );
    expect(failure.hint).toMatch(/rolled back whole/);
    expect(tenantify.isTenantifyError(error)).toBe(true);
    expect(await query(url, 'SELECT count(*)::int AS n FROM teams')).toEqual([{ n: 0 }]);
    expect(await ledgerStatuses(url)).toEqual({ '0001_create_teams': 'applied', '0002_seed_teams': 'failed' });
  });

  it('a plan with drift rejects with a DriftError (exit code 5) before anything runs', async () => {
    const dir = writePlan(plan);
    const { url } = dropped(await freshDatabase('api'));
    const r = recorder();
    await tenantify.apply({ dir, url, reporter: r.reporter, noSnapshot: true, to: '0001_create_teams' });
    writeFileSync(join(dir, 'migrations/0001_create_teams.sql'), 'CREATE TABLE teams (id bigint PRIMARY KEY, name text NOT NULL);\n');
    const error = await tenantify.apply({ dir, url, reporter: r.reporter, noSnapshot: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(tenantify.DriftError);
    expect((error as tenantify.TenantifyError).exitCode).toBe(tenantify.ExitCode.drift);
    expect(await ledgerStatuses(url)).toEqual({ '0001_create_teams': 'applied' });
  });

  it('rehearse: apply, verify, roll back to the source, apply again, on a server of its own', { timeout: 120_000 }, async () => {
    const dir = writePlan(plan);
    const fixture = join(dir, 'legacy.sql');
    writeFileSync(fixture, 'CREATE TABLE legacy (id int);\nINSERT INTO legacy VALUES (1);\n');
    const r = recorder();
    const result = await tenantify.rehearse({ dir, fixture, targetServerUrl: serverUrl(), reporter: r.reporter, log: () => {} });
    expect(result.steps.filter((s) => !s.ok)).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.exitCode).toBe(0);
  });
});
