/**
 * A unit of generated INSERTs (150,000 statements by default): the peak memory (RSS, from
 * /usr/bin/time -v) and wall time of `plan` and `apply` on it, with the split cache off so
 * that every run parses. `--statements N` for another size; `--no-build` to skip the build.
 *
 *   npx tsx bench/large-unit.ts [--statements 150000]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startThrowawayPostgres } from '../src/db/throwaway.js';
import { repoRoot } from './lib.js';

const argv = process.argv.slice(2);
const count = Number(argv[argv.indexOf('--statements') + 1] || 150_000) || 150_000;
if (!argv.includes('--no-build')) spawnSync('npm', ['run', 'build', '--silent'], { cwd: repoRoot, stdio: 'inherit' });

const dir = mkdtempSync(join(tmpdir(), 'tenantify-large-unit-'));
mkdirSync(join(dir, 'migrations'));
writeFileSync(join(dir, 'migrations/0001_table.sql'), 'CREATE TABLE big (id int PRIMARY KEY, name text, note text);\n');
const rows = Array.from({ length: count }, (_, i) => `INSERT INTO big (id, name, note) VALUES (${i}, 'name ${i}', 'n');\n`);
writeFileSync(join(dir, 'migrations/0002_rows.sql'), rows.join(''));
const bytes = statSync(join(dir, 'migrations/0002_rows.sql')).size;

const server = await startThrowawayPostgres({ prefer: 'local', log: (l) => process.stderr.write(`${l}\n`) });
try {
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query('CREATE DATABASE large_unit');
  await admin.end();
  const url = new URL(server.url);
  url.pathname = '/large_unit';
  const measure = (command: string): { command: string; exit: number | null; seconds: number; peakMb: number } => {
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
  };
  const results = [measure('plan'), measure('apply')];
  console.log(`a unit of ${count} INSERTs, ${(bytes / 1024 / 1024).toFixed(1)} MB (split cache off)`);
  for (const r of results) console.log(`${r.command.padEnd(6)} exit ${r.exit}  peak RSS ${r.peakMb} MB  wall ${r.seconds.toFixed(1)} s`);
} finally {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
