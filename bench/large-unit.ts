/**
 * Units of generated INSERTs at two sizes (150,000 and 450,000 statements by default): the
 * peak memory (RSS, from /usr/bin/time -v) and wall time of `plan` and `apply` on each, with
 * the split cache off so that every run parses. A unit file that large is streamed (its
 * statements read and run as the file goes by, never all held), so the peaks should stay
 * roughly flat as the unit grows: the last line gives the ratio of the larger's to the
 * smaller's. `--statements N,M` for other sizes; `--no-build` to skip the build.
 *
 *   npx tsx bench/large-unit.ts [--statements 150000,450000] [--no-build]
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startThrowawayPostgres } from '../src/db/throwaway.js';
import { repoRoot } from './lib.js';

const argv = process.argv.slice(2);
const sizes = (argv.includes('--statements') ? (argv[argv.indexOf('--statements') + 1] ?? '') : '150000,450000')
  .split(',')
  .map(Number)
  .filter((n) => Number.isInteger(n) && n > 0);
if (!argv.includes('--no-build')) spawnSync('npm', ['run', 'build', '--silent'], { cwd: repoRoot, stdio: 'inherit' });

interface Measure {
  command: string;
  exit: number | null;
  seconds: number;
  peakMb: number;
}

const server = await startThrowawayPostgres({ prefer: 'local', log: (l) => process.stderr.write(`${l}\n`) });
const peaks: { count: number; plan: number; apply: number }[] = [];
try {
  for (const count of sizes) {
    const dir = mkdtempSync(join(tmpdir(), 'tenantify-large-unit-'));
    try {
      mkdirSync(join(dir, 'migrations'));
      writeFileSync(join(dir, 'migrations/0001_table.sql'), 'CREATE TABLE big (id int PRIMARY KEY, name text, note text);\n');
      // Written a block at a time: the bench itself stays small beside what it measures.
      const file = join(dir, 'migrations/0002_rows.sql');
      writeFileSync(file, '');
      for (let from = 0; from < count; from += 10_000) {
        const rows: string[] = [];
        for (let i = from; i < Math.min(count, from + 10_000); i++)
          rows.push(`INSERT INTO big (id, name, note) VALUES (${i}, 'name ${i}', 'n');\n`);
        appendFileSync(file, rows.join(''));
      }
      const bytes = statSync(file).size;
      const database = `large_unit_${count}`;
      const admin = new pg.Client({ connectionString: server.url });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${database}`);
      await admin.end();
      const url = new URL(server.url);
      url.pathname = `/${database}`;
      const results = [measure('plan', dir, url), measure('apply', dir, url)];
      console.log(`a unit of ${count} INSERTs, ${(bytes / 1024 / 1024).toFixed(1)} MB (split cache off)`);
      for (const r of results)
        console.log(`  ${r.command.padEnd(6)} exit ${r.exit}  peak RSS ${r.peakMb} MB  wall ${r.seconds.toFixed(1)} s`);
      peaks.push({ count, plan: results[0]?.peakMb ?? 0, apply: results[1]?.peakMb ?? 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const [small, large] = [peaks[0], peaks[peaks.length - 1]];
  if (small && large && large !== small)
    console.log(
      `${large.count / small.count}x the statements: plan peak ${(large.plan / small.plan).toFixed(2)}x, apply peak ${(large.apply / small.apply).toFixed(2)}x`,
    );
} finally {
  await server.close();
}

function measure(command: string, dir: string, url: URL): Measure {
  const run = spawnSync(
    '/usr/bin/time',
    ['-v', process.execPath, join(repoRoot, 'bin/tenantify'), command, '--dir', dir, '-d', url.toString()],
    {
      env: { ...process.env, TENANTIFY_CACHE_DIR: 'none' },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const peakKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(run.stderr)?.[1] ?? 0);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(run.stderr);
  const seconds = wall ? Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]) : NaN;
  if (run.status !== 0) process.stderr.write(run.stderr.slice(-2000));
  return { command, exit: run.status, seconds, peakMb: Math.round(peakKb / 1024) };
}
