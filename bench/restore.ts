/**
 * bench/restore: `tenantify snapshots restore` of a table whose dump expands to more than
 * 600 MB of SQL (multi-byte text), with the peak memory of the tenantify process (its own
 * getrusage maxRSS, written at exit by a preload) and its time, beside the floor: the same
 * dump through `pg_restore -f - | psql -1 -f -` in a shell, into an empty database. Goal: peak
 * under 250 MB, flat with the table's size (the restore streams bytes; it used to hold the
 * script in one string, ~3.3x the SQL, and died past V8's string limit at ~536 MB).
 * Then the restored table is checked against the table before the unit (count, hash of
 * every row, no U+FFFD).
 *
 *   npx tsx bench/restore.ts [--rows 1300000] [--no-build] [--compare LABEL=/path/to/bin/tenantify ...]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { findPgTool, libpqEnvironment } from '../src/db/pg-tools.js';
import { startThrowawayPostgres } from '../src/db/throwaway.js';
import { build, contenderEnv, expectSuccess, fmt, machine, nodeEnvNote, repoRoot, table, timed, writeResult, withDatabase } from './lib.js';

interface Args {
  rows: number;
  build: boolean;
  keepNodeEnv: boolean;
  /** Other builds restoring the same snapshot after this one: label and bin/tenantify. */
  compare: { label: string; bin: string }[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = { rows: 1_300_000, build: true, keepNodeEnv: false, compare: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rows') args.rows = Number(argv[++i]);
    else if (a === '--no-build') args.build = false;
    else if (a === '--keep-node-env') args.keepNodeEnv = true;
    else if (a === '--compare') {
      const [label, bin] = (argv[++i] ?? '').split('=');
      if (!label || !bin) throw new Error('--compare LABEL=/path/to/bin/tenantify');
      args.compare.push({ label, bin });
    } else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

async function query<T extends pg.QueryResultRow = Record<string, unknown>>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

/** What the restore must give back: row count, a hash of every row, rows holding U+FFFD. */
async function fingerprint(url: string): Promise<string> {
  const [row] = await query<{ n: string; h: string; bad: string }>(
    url,
    `SELECT count(*) AS n, sum(hashtextextended(b::text, 0)::numeric) AS h, count(*) FILTER (WHERE s LIKE '%' || chr(65533) || '%') AS bad FROM big b`,
  );
  return `${row?.n} rows, hash ${row?.h}, ${row?.bad} with U+FFFD`;
}

/** Runs a command, timing it; with `peakFile`, node's preload writes the process's maxRSS (KB) there at exit. */
function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ ms: number; code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ ms: performance.now() - started, code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.build) {
    process.stderr.write('building tenantify (npm run build)...\n');
    build();
  }
  const pgRestore = findPgTool('pg_restore');
  const psql = findPgTool('psql');
  if (!pgRestore || !psql) throw new Error('pg_restore and psql are needed');
  const server = await startThrowawayPostgres({
    prefer: (process.env['TENANTIFY_THROWAWAY'] as 'docker' | 'local' | undefined) ?? 'local',
    log: (l) => process.stderr.write(`${l}\n`),
  });
  const work = mkdtempSync(join(tmpdir(), 'tenantify-bench-restore-'));
  try {
    const admin = server.url;
    const url = withDatabase(admin, 'restore_big');
    await query(admin, 'CREATE DATABASE restore_big');
    await query(admin, 'CREATE DATABASE restore_raw');
    const loadStarted = performance.now();
    // ~520 bytes of 2-, 3- and 4-byte characters a row: the COPY text is mostly multi-byte.
    await query(
      url,
      `CREATE TABLE big (id bigint PRIMARY KEY, s text NOT NULL);
      INSERT INTO big SELECT g, repeat('é✓漢🙂', 43) || g FROM generate_series(1, ${args.rows}) g`,
    );
    await query(url, 'VACUUM (FREEZE, ANALYZE) big');
    const [size] = await query<{ size: string }>(url, "SELECT pg_size_pretty(pg_total_relation_size('big')) AS size");
    const before = await fingerprint(url);
    process.stderr.write(`loaded ${args.rows} rows (${size?.size}) in ${fmt((performance.now() - loadStarted) / 1000)} s: ${before}\n`);

    const plan = join(work, 'plan');
    mkdirSync(join(plan, 'backfills'), { recursive: true });
    writeFileSync(join(plan, 'backfills', '0001_touch.sql'), "UPDATE big SET s = 'x' WHERE id % 1000 = 0;\n");
    writeFileSync(join(plan, 'tenantify.config.json'), `${JSON.stringify({ snapshotDir: join(work, 'snapshots') }, null, 2)}\n`);
    const cli = join(repoRoot, 'bin', 'tenantify');
    const env = contenderEnv(args.keepNodeEnv, { NO_COLOR: '1' });
    const apply = await timed(process.execPath, [cli, 'apply', '--dir', plan, '-d', url], { env });
    expectSuccess('tenantify apply', apply);
    const [manifest] = await query<{ detail: { file: string; bytes: number; format: string } }>(
      url,
      "SELECT detail FROM tenantify.events WHERE event = 'snapshot_taken'",
    );
    const dump = manifest?.detail;
    if (!dump) throw new Error('no snapshot was taken');
    const sqlBytes = Number((await timed('sh', ['-c', `'${pgRestore.path}' -f - '${dump.file}' | wc -c`])).stdout.trim());
    process.stderr.write(`snapshot: ${dump.format} ${dump.bytes} bytes, ${fmt(sqlBytes / 1024 / 1024)} MB of SQL from pg_restore\n`);

    // The floor: the same dump through a shell pipe into an empty database.
    const rawEnv = { ...libpqEnvironment(withDatabase(admin, 'restore_raw')) };
    const raw = await timed(
      'sh',
      ['-c', `'${pgRestore.path}' -f - '${dump.file}' | '${psql.path}' -X -q -v ON_ERROR_STOP=1 -1 -f - > /dev/null`],
      { env: rawEnv },
    );
    expectSuccess('pg_restore | psql', raw);

    const peakFile = join(work, 'peak');
    const preload = join(work, 'peak.cjs');
    writeFileSync(
      preload,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(peakFile)}, String(process.resourceUsage().maxRSS)));\n`,
    );
    const restoreWith = async (bin: string): Promise<{ ms: number; peakMb: number; code: number | null; error: string; after: string }> => {
      rmSync(peakFile, { force: true });
      const r = await run(
        process.execPath,
        ['--require', preload, bin, 'snapshots', 'restore', '0001_touch', '--dir', plan, '-d', url, '--yes'],
        env,
      );
      const peakMb = Number(readFileSync(peakFile, 'utf8')) / 1024;
      const after = await fingerprint(url);
      return {
        ms: r.ms,
        peakMb,
        code: r.code,
        error: r.code === 0 ? '' : r.stderr.trim().split('\n').slice(-3).join(' / ').slice(0, 300),
        after,
      };
    };
    const mine = await restoreWith(cli);
    if (mine.code !== 0) throw new Error(`tenantify snapshots restore exited ${mine.code}: ${mine.error}`);
    const restore = mine;
    const peakMb = mine.peakMb;
    const after = mine.after;
    const exact = after === before;
    const others: { label: string; ms: number; peakMb: number; code: number | null; error: string; exact: boolean; after: string }[] = [];
    for (const other of args.compare) {
      process.stderr.write(`restoring with ${other.label} (${other.bin})...\n`);
      const r = await restoreWith(other.bin);
      others.push({ label: other.label, ...r, exact: r.after === before });
    }

    console.log(
      `\nrestore of a ${args.rows}-row table (${size?.size}; ${fmt(sqlBytes / 1024 / 1024)} MB of SQL, a ${dump.format} dump of ${fmt(dump.bytes / 1024 / 1024)} MB)`,
    );
    console.log(
      table(
        ['contender', 'wall s', 'peak RSS MB', 'vs floor', 'content'],
        [
          [
            'tenantify snapshots restore',
            fmt(restore.ms / 1000),
            fmt(peakMb),
            `${fmt(restore.ms / raw.ms, 2)}x`,
            exact ? 'exact' : 'DIFFERS',
          ],
          ...others.map((o) => [
            o.label,
            fmt(o.ms / 1000),
            fmt(o.peakMb),
            `${fmt(o.ms / raw.ms, 2)}x`,
            o.code === 0 ? (o.exact ? 'exact' : `DIFFERS: ${o.after}`) : `exit ${o.code}: ${o.error}`,
          ]),
          ['pg_restore -f - | psql -1 (floor)', fmt(raw.ms / 1000), '-', '1.00x', ''],
        ],
      ),
    );
    console.log(
      'peak RSS: process.resourceUsage().maxRSS of the tenantify process at its exit (node alone; pg_restore and psql are separate processes).',
    );
    console.log(
      `content after the restore ${exact ? 'equals' : 'DIFFERS FROM'} the table before the unit: ${after}${exact ? '' : ` (before: ${before})`}`,
    );
    console.log(
      `goal peak under 250 MB: ${fmt(peakMb)} MB -> ${peakMb < 250 && sqlBytes > 600 * 1024 * 1024 ? 'MET' : 'NOT MET'}${sqlBytes > 600 * 1024 * 1024 ? '' : ' (the SQL is under 600 MB: raise --rows)'}`,
    );
    const note = nodeEnvNote(args.keepNodeEnv);
    if (note) console.log(note);
    const file = writeResult('restore.json', {
      machine: machine(),
      rows: args.rows,
      tableSize: size?.size,
      sqlBytes,
      dump,
      restore: { ms: restore.ms, peakRssMb: peakMb },
      floor: { ms: raw.ms },
      compared: others,
      exact,
      before,
      after,
    });
    console.log(`written to ${file}`);
    if (!exact) process.exitCode = 1;
  } finally {
    await server.close();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
