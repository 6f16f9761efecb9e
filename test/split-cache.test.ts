/**
 * The split cache (src/plan/split-cache.ts): a plan loads the same from it as from the
 * parser, line numbers included, and it is only a cache: a corrupt file or none at all
 * changes nothing but the time.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const plans = [
  repo,
  ...['restaurant-platform', 'ai-saas-subscriptions', 'customers-to-organizations', 'organization-modules'].map((name) =>
    join(repo, 'fixtures', name),
  ),
];

/**
 * Each plan of `dirs` loaded in turn (a load per plan, as a run makes) by one fresh process of
 * the built package (dist/), as JSON: one start for all of them (each start loads dist/ unbundled).
 */
const script = `
  const { loadConfig } = await import(${JSON.stringify(join(repo, 'dist/plan/config.js'))});
  const { loadPlan } = await import(${JSON.stringify(join(repo, 'dist/plan/load.js'))});
  const loaded = [];
  for (const dir of JSON.parse(process.env.PLAN_DIRS)) {
    const units = await loadPlan(dir, await loadConfig(dir));
    loaded.push(JSON.stringify(units, (key, value) => (typeof value === 'bigint' ? String(value) : value)));
  }
  process.stdout.write(JSON.stringify(loaded));
`;

function loaded(dirs: string[], cacheDir: string): string[] {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, PLAN_DIRS: JSON.stringify(dirs), TENANTIFY_CACHE_DIR: cacheDir },
    encoding: 'utf8',
  });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  return JSON.parse(run.stdout) as string[];
}

function cacheFiles(cacheDir: string): string[] {
  return readdirSync(cacheDir)
    .filter((name) => /^splits-[0-9a-f]+\.json$/.test(name))
    .map((name) => join(cacheDir, name));
}

describe('the split cache', () => {
  it('loads every scenario plan exactly as the parser does, cold, warm, corrupt or off', () => {
    const cacheDir = join(mkdtempSync(join(tmpdir(), 'tenantify-cache-')), 'cache');
    // Without the cache; then with it, each plan cold (the file holds the plans loaded before
    // it, as when each loaded in a run of its own), then warm.
    const parsed = loaded(plans, 'none');
    expect(parsed).toHaveLength(plans.length);
    for (const plan of parsed) expect(JSON.parse(plan).length).toBeGreaterThan(3);
    expect(loaded(plans, cacheDir)).toEqual(parsed);
    expect(loaded(plans, cacheDir)).toEqual(parsed);
    const [file] = cacheFiles(cacheDir);
    expect(statSync(file!).mode & 0o777).toBe(0o600);
    expect(statSync(cacheDir).mode & 0o777).toBe(0o700);
    // An entry per SQL file: a file is split in one parse.
    const sqlFiles = plans.flatMap((dir) =>
      ['migrations', 'backfills', 'rollbacks'].flatMap((folder) => {
        try {
          return readdirSync(join(dir, folder)).filter((name) => name.endsWith('.sql'));
        } catch {
          return [];
        }
      }),
    );
    expect(sqlFiles.length).toBeGreaterThan(50);
    // (files with the same text share an entry)
    expect(Object.keys(JSON.parse(readFileSync(file!, 'utf8')) as object).length).toBeGreaterThan(sqlFiles.length / 2);

    // A warm load reads its splits from the file: a doctored entry shows through.
    const original = readFileSync(file!, 'utf8');
    const doctored = JSON.parse(original) as Record<string, { column: number }[]>;
    for (const split of Object.values(doctored)) for (const statement of split) statement.column = 999;
    writeFileSync(file!, JSON.stringify(doctored));
    expect(loaded([repo], cacheDir)[0]).toContain('"column":999');

    writeFileSync(file!, '{"not": "json');
    expect(loaded([repo], cacheDir)).toEqual(parsed.slice(0, 1));
    expect(() => JSON.parse(readFileSync(file!, 'utf8')) as unknown).not.toThrow();
  });

  it('gives a plan error the same file and line from a cached split', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'tenantify-cache-'));
    const dir = writePlan({
      'backfills/0001_two.sql':
        '-- tenantify:batch users key=id\n\nUPDATE users SET name = name WHERE id > $1 AND id <= $2;\n\nUPDATE users SET name = name;\n\n-- tenantify:verify nothing\nSELECT 1 WHERE false;\n',
    });
    const cold = await runCli(['plan', '--dir', dir], { env: { TENANTIFY_CACHE_DIR: cacheDir } });
    const warm = await runCli(['plan', '--dir', dir], { env: { TENANTIFY_CACHE_DIR: cacheDir } });
    expect(cold.code).toBe(2);
    expect(cold.stderr).toContain('backfills/0001_two.sql:5');
    expect(cold.stderr).toContain('a batched unit has exactly one statement');
    expect([warm.code, warm.stderr]).toEqual([cold.code, cold.stderr]);
    expect(cacheFiles(cacheDir)).toHaveLength(1);
  });
});
