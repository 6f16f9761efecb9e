/**
 * The code cache bin/tenantify keeps of the compiled CLI: written by a run that finds none,
 * used and left alone by the next ones, and only a cache: a corrupt one or none at all
 * changes nothing but the time. Runs from the cache still load what they load at run time
 * (libpg-query, tsx), which a script compiled from a code cache cannot import by itself.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dropAfterAll, freshDatabase } from './support/db.js';
import { runCli } from './support/cli.js';
import { writePlan } from './support/plan-dir.js';

// The unit imports defineUnit from its module, not the whole API (dist/index.js): through tsx's
// loader that graph costs a plan about 2 s more per run, and what is tested here is that tsx loads.
const define = fileURLToPath(new URL('../dist/plan/define.js', import.meta.url));

describe('the code cache', () => {
  const dropped = dropAfterAll();

  it('is written once, then used; a corrupt one is replaced; runs from it load libpg-query and tsx', async () => {
    const db = dropped(await freshDatabase('codecache'));
    const dir = writePlan({
      'migrations/0001_sql.sql': 'CREATE TABLE a (id int);\n-- tenantify:verify empty\nSELECT id FROM a;\n',
      'migrations/0002_ts.ts': `import { defineUnit } from ${JSON.stringify(define)};\nexport default defineUnit({ async up(db) { await db.schema.createTable('b').addColumn('id', 'integer').execute(); } });\n`,
    });
    const cacheDir = mkdtempSync(join(tmpdir(), 'tenantify-cache-'));
    const files = (prefix: string): string[] =>
      readdirSync(cacheDir)
        .filter((name) => name.startsWith(prefix))
        .map((name) => join(cacheDir, name));
    const plan = async (env: Record<string, string> = { TENANTIFY_CACHE_DIR: cacheDir }): Promise<string> => {
      const result = await runCli(['plan', '-d', db.url, '--dir', dir], { env });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      return result.stdout;
    };

    const first = await plan();
    const [code] = files('code-');
    expect(code).toBeDefined();
    expect(statSync(code as string).mode & 0o777).toBe(0o600);
    // The first run parsed the SQL, which changes V8's flags: the next run may write the cache once more.
    expect(await plan()).toBe(first);
    const written = statSync(code as string).mtimeMs;
    // A run from the cache that needs the parser again (no split cache) and tsx.
    for (const splits of files('splits-')) rmSync(splits);
    expect(await plan()).toBe(first);
    expect(files('splits-')).toHaveLength(1);
    expect(statSync(code as string).mtimeMs).toBe(written);

    writeFileSync(code as string, 'not a code cache');
    expect(await plan()).toBe(first);
    expect(readFileSync(code as string).length).toBeGreaterThan(1000);

    expect(await plan({ TENANTIFY_CACHE_DIR: 'none' })).toBe(first);
    expect(files('code-')).toEqual([code]);
  });
});
