/**
 * The five seed fixtures: each scaffolded from its tenancy model (fixtures/<name>/scaffold.config.json)
 * into a plan directory of its own, then rehearsed: apply, verify, full rollback to exactly
 * the legacy schema and content, apply again, verify again. The tenancy check after each
 * apply passes every rule, warnings included (as `--strict` asks): a clean `--composite
 * --rls` plan leaves no finding. The plans run without the throttle's pauses (no test here is
 * about yielding to an app), and hosts-to-organizations at a tenth of its size (its shape is
 * what the scaffold reads; the reference plan's own test keeps the full size).
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query, serverUrl } from './support/db.js';
import { smallHostsSeed } from './support/fixtures.js';

const fixtures = [
  'hosts-to-organizations',
  'restaurant-platform',
  'customers-to-organizations',
  'ai-saas-subscriptions',
  'organization-modules',
];

describe.each(fixtures)('tenancy scaffold of %s', (name) => {
  const dropped = dropAfterAll();

  it('writes a plan that passes rehearse --fixture', async () => {
    const fixture = name === 'hosts-to-organizations' ? smallHostsSeed() : `fixtures/${name}/legacy.sql`;
    // Loaded straight into the one database that needs it: a template copied once is a copy more.
    const db = dropped(await freshDatabase('scf'));
    await query(db.url, readFileSync(fixture, 'utf8'));
    const dir = mkdtempSync(join(tmpdir(), `scaffold-${name}-`));
    const config = JSON.parse(readFileSync(`fixtures/${name}/scaffold.config.json`, 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'tenantify.config.json'), JSON.stringify({ ...config, batch: { throttle: 'off' } }));

    const scaffold = await runCli(['tenancy', 'scaffold', '-d', db.url, '--dir', dir, '--composite', '--rls', '--json']);
    expect(scaffold.stderr).toBe('');
    expect(scaffold.code).toBe(0);
    const written = JSON.parse(scaffold.stdout) as { files: { unit: string; file: string; rollback: string }[] };
    expect(written.files.length).toBeGreaterThan(3);
    const files = ['migrations', 'backfills'].flatMap((d) => readdirSync(join(dir, d)).map((f) => `${d}/${f}`));
    expect(files.sort()).toEqual(written.files.map((f) => f.file).sort());
    // The plan passes its own lint, rollbacks included: no finding but allowed ones.
    const lint = await runCli(['lint', '--dir', dir, '--json']);
    expect(
      (JSON.parse(lint.stdout) as { findings: { allowed: boolean }[] }).findings.filter((f) => !f.allowed),
      lint.stderr,
    ).toEqual([]);
    expect(lint.code).toBe(0);

    const result = await runCli(['rehearse', '--fixture', fixture, '--dir', dir, '--json'], {
      env: { TENANTIFY_REHEARSE_SERVER_URL: serverUrl() },
    });
    const doc = JSON.parse(result.stdout || '{}') as { ok: boolean; steps: { name: string; ok: boolean; details: string[] }[] };
    expect(
      doc.steps?.filter((s) => !s.ok),
      result.stderr,
    ).toEqual([]);
    // Rehearse's own steps, and (since it checks the tenancy model after each apply) tenancy check's.
    expect(doc.steps.map((s) => s.name)).toEqual(
      expect.arrayContaining(['load', 'apply', 'verify', 'rollback', 'compare with the source', 'apply again', 'verify again']),
    );
    expect(result.code).toBe(0);
    // Every rule passed, warnings included: what `tenancy check --strict` asks.
    for (const step of doc.steps.filter((s) => s.name.startsWith('tenancy check')))
      expect(step.details[0]).toMatch(/^(\d+) of \1 rules passed on \d+ tables$/);
    expect(doc.steps.filter((s) => s.name.startsWith('tenancy check')).length).toBe(2);
  });
});
