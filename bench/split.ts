/**
 * Splitting one big unit into statements: the time of `parseSqlUnit` (the loader's whole
 * work on a SQL file: directives, libpg-query's parse, statements with their lines) for a
 * unit of N INSERTs, with the split cache off.
 *
 *   npx tsx bench/split.ts                       # 10k, 20k, 40k statements
 *   npx tsx bench/split.ts --baseline <rev>      # and the code of <rev> beside it, in the same process
 *   npx tsx bench/split.ts --sizes 5000,10000 --baseline <rev> --baseline-max 20000
 *
 * The baseline's src/ is extracted with `git archive` under bench/results/ (git-ignored)
 * and imported from there, so both run against the same libpg-query. Each size is timed
 * for every contender in turn, best of --rounds (default 3; 1 for a contender above 10 s),
 * each round a new text (the split cache keeps what this process parsed).
 */
import { execSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot, resultsDir } from './lib.js';

process.env['TENANTIFY_CACHE_DIR'] = 'none';

const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? undefined : args[i + 1];
};
const sizes = (option('sizes') ?? '10000,20000,40000').split(',').map(Number);
const rounds = Number(option('rounds') ?? 3);
const baselineRev = option('baseline');
const baselineMax = Number(option('baseline-max') ?? Infinity);

type ParseSqlUnit = (
  file: string,
  text: string,
  defaults: { lockTimeoutMs: number | undefined; statementTimeoutMs: number | undefined; retries: number },
) => { statements: unknown[] };
interface Contender {
  name: string;
  parse: ParseSqlUnit;
  max: number;
}

async function contender(name: string, srcDir: string, max: number): Promise<Contender> {
  const mod = (await import(pathToFileURL(join(srcDir, 'plan', 'sql-unit.ts')).href)) as {
    loadSqlParser(): Promise<void>;
    parseSqlUnit: ParseSqlUnit;
  };
  await mod.loadSqlParser();
  return { name, parse: mod.parseSqlUnit, max };
}

/** `round` makes every text new: the split cache, off on disk, still keeps this process's splits. */
function unitText(n: number, round: number): string {
  const lines = ['-- tenantify:retries 3', `CREATE TABLE bench_split_${round} (id bigint PRIMARY KEY, name text, note text);`];
  for (let i = 0; i < n; i++) lines.push(`INSERT INTO bench_split (id, name, note) VALUES (${i}, 'name ${i}', 'café ${i}');`);
  return `${lines.join('\n')}\n`;
}

const contenders: Contender[] = [await contender('this tree', join(repoRoot, 'src'), Infinity)];
if (baselineRev) {
  const dir = join(resultsDir, `split-baseline-${baselineRev.replace(/[^A-Za-z0-9]/g, '_')}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execSync(`git archive ${baselineRev} src | tar -x -C ${JSON.stringify(dir)}`, { cwd: repoRoot, shell: '/bin/sh' });
  contenders.push(await contender(`baseline ${baselineRev}`, join(dir, 'src'), baselineMax));
}

const defaults = { lockTimeoutMs: undefined, statementTimeoutMs: undefined, retries: 3 };
const rows: { statements: number; megabytes: number; results: Record<string, number | null> }[] = [];
for (const n of sizes) {
  const bytes = Buffer.byteLength(unitText(n, 0));
  const results: Record<string, number | null> = {};
  for (const c of contenders) {
    if (n > c.max) {
      results[c.name] = null;
      continue;
    }
    let best = Infinity;
    for (let r = 0; r < rounds; r++) {
      const text = unitText(n, r);
      const start = performance.now();
      const parsed = c.parse('migrations/0001_bench.sql', text, defaults);
      const ms = performance.now() - start;
      if (parsed.statements.length !== n + 1) throw new Error(`${c.name}: ${parsed.statements.length} statements, expected ${n + 1}`);
      best = Math.min(best, ms);
      if (ms > 10_000) break;
    }
    results[c.name] = best;
  }
  rows.push({ statements: n, megabytes: bytes / 1e6, results });
  const cells = contenders.map((c) => `${c.name}: ${results[c.name] === null ? 'skipped' : `${Math.round(results[c.name] as number)} ms`}`);
  console.log(`${String(n).padStart(6)} INSERTs (${(bytes / 1e6).toFixed(2)} MB)  ${cells.join('   ')}`);
}

mkdirSync(resultsDir, { recursive: true });
writeFileSync(
  join(resultsDir, 'split.json'),
  `${JSON.stringify({ when: new Date().toISOString(), rounds, baseline: baselineRev ?? null, rows }, null, 2)}\n`,
);
