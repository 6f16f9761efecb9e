/**
 * bench/scaling: the batched backfill's throughput as the table grows. A `hosts` table of
 * N rows (100k, 1M, 3M by default; `--rows 100000,1000000,10000000` for the 10M)
 * whose new organization_id comes through a join on `users` (10,000 users), backfilled by
 * one tenantify unit (`-- tenantify:batch hosts key=id size=5000`, the scaffold's size),
 * `apply --no-snapshot` with the defaults (workers, target duration, throttle), alone on
 * the server. rows/s is the rows over the unit's duration_ms in the ledger. Goal (issue 28):
 * rows/s at the largest size within 0.7x of the smallest (pgroll's published figures fall
 * from ~52k rows/s at 10k rows to ~10k rows/s at 300k).
 *
 * Each size gets a fresh database, loaded, indexed, vacuumed and frozen, then CHECKPOINT.
 * `--throttle off` measures without the throttle (the config's batch.throttle).
 *
 *   npx tsx bench/scaling.ts [--rows 100000,1000000,3000000] [--throttle off] [--users 10000] [--no-build]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startThrowawayPostgres } from '../src/db/throwaway.js';
import {
  build,
  contenderEnv,
  expectSuccess,
  fmt,
  machine,
  repoRoot,
  runStatements,
  table,
  timed,
  withDatabase,
  writeResult,
} from './lib.js';

interface Args {
  rows: number[];
  throttle: 'on' | 'off';
  users: number;
  build: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { rows: [100_000, 1_000_000, 3_000_000], throttle: 'on', users: 10_000, build: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rows') args.rows = String(argv[++i]).split(',').map(Number);
    else if (a === '--throttle') args.throttle = argv[++i] === 'off' ? 'off' : 'on';
    else if (a === '--users') args.users = Number(argv[++i]);
    else if (a === '--no-build') args.build = false;
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

const unit = `-- tenantify:snapshot none
-- tenantify:batch hosts key=id size=5000
UPDATE hosts h SET organization_id = u.organization_id
  FROM users u WHERE u.id = h.user_id AND h.id > $1 AND h.id <= $2 AND h.organization_id IS NULL;

-- tenantify:verify every host has its user's organization
SELECT h.id FROM hosts h JOIN users u ON u.id = h.user_id WHERE h.organization_id IS DISTINCT FROM u.organization_id LIMIT 5;
`;

/**
 * The parent table keeps one size (`--users`, 10,000) whatever the rows: each batch's plan
 * hashes the users it joins, and a parent growing with the table would make every batch
 * slower for that reason alone (measured: with N/10 users, 6,100 rows/s at 1M against
 * 30,900 at 100k, the time in the parent's sequential scan), not because of the batching.
 */
function load(rows: number, users: number): string[] {
  return [
    'SELECT setseed(0.42)',
    'CREATE TABLE users (id bigint PRIMARY KEY, organization_id bigint NOT NULL)',
    `CREATE TABLE hosts (id bigint NOT NULL, user_id bigint NOT NULL, name text NOT NULL, organization_id bigint)`,
    `INSERT INTO users SELECT i, 1 + i % 1000 FROM generate_series(1, ${users}) i`,
    `INSERT INTO hosts (id, user_id, name) SELECT i, 1 + floor(random() * ${users})::bigint, 'host-' || i FROM generate_series(1, ${rows}) i`,
    'ALTER TABLE hosts ADD PRIMARY KEY (id)',
    'ALTER TABLE hosts ADD FOREIGN KEY (user_id) REFERENCES users',
    'VACUUM (FREEZE, ANALYZE)',
    'CHECKPOINT',
  ];
}

interface Point {
  rows: number;
  loadS: number;
  unitMs: number;
  batches: number;
  rowsPerSecond: number;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.build) build();
  const env = contenderEnv(false);
  const server = await startThrowawayPostgres({ prefer: 'local' });
  const dir = mkdtempSync(join(tmpdir(), 'bench-scaling-'));
  mkdirSync(join(dir, 'backfills'));
  writeFileSync(join(dir, 'backfills', '0001_hosts_organization_id.sql'), unit);
  writeFileSync(
    join(dir, 'tenantify.config.json'),
    `${JSON.stringify(args.throttle === 'off' ? { batch: { throttle: 'off' } } : {}, null, 2)}\n`,
  );
  const points: Point[] = [];
  try {
    for (const rows of args.rows) {
      const database = `scaling_${rows}`;
      await runStatements(server.url, [`CREATE DATABASE ${database}`]);
      const url = withDatabase(server.url, database);
      const started = performance.now();
      await runStatements(url, load(rows, args.users));
      const loadS = (performance.now() - started) / 1000;
      const apply = await timed(
        process.execPath,
        [join(repoRoot, 'bin/tenantify'), 'apply', '-d', url, '--dir', dir, '--no-snapshot', '--json'],
        { env },
      );
      expectSuccess(`apply at ${rows} rows`, apply);
      const [ledger] = await runStatements(url, [
        "SELECT duration_ms, progress FROM tenantify.units WHERE id = '0001_hosts_organization_id'",
      ]);
      const row = ledger?.rows[0] as { duration_ms: number; progress: { rowsDone?: number; batches?: number } };
      const done = Number(row.progress.rowsDone ?? 0);
      if (done !== rows) throw new Error(`${rows} rows: the backfill changed ${done}`);
      const point = {
        rows,
        loadS,
        unitMs: row.duration_ms,
        batches: Number(row.progress.batches ?? 0),
        rowsPerSecond: rows / (row.duration_ms / 1000),
      };
      process.stderr.write(
        `${rows.toLocaleString('en')} rows: loaded in ${fmt(loadS)} s, backfilled in ${fmt(point.unitMs / 1000, 1)} s, ${Math.round(point.rowsPerSecond).toLocaleString('en')} rows/s\n`,
      );
      points.push(point);
      await runStatements(server.url, [`DROP DATABASE ${database}`]);
    }
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const first = points[0] as Point;
  console.log(
    `batched backfill (UPDATE ... FROM users, batch key=id size=5000 adaptive, default workers, throttle ${args.throttle}), one table growing`,
  );
  console.log(
    table(
      ['rows', 'backfill s', 'batches', 'rows/s', `vs ${first.rows.toLocaleString('en')}`],
      points.map((p) => [
        p.rows.toLocaleString('en'),
        fmt(p.unitMs / 1000, 1),
        String(p.batches),
        Math.round(p.rowsPerSecond).toLocaleString('en'),
        `${fmt(p.rowsPerSecond / first.rowsPerSecond, 2)}x`,
      ]),
    ),
  );
  const last = points[points.length - 1] as Point;
  console.log(
    `goal rows/s at ${last.rows.toLocaleString('en')} within 0.7x of ${first.rows.toLocaleString('en')}: ${fmt(last.rowsPerSecond / first.rowsPerSecond, 2)}x -> ${last.rowsPerSecond >= 0.7 * first.rowsPerSecond ? 'MET' : 'NOT MET'}`,
  );
  console.log(
    `load average: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  console.log(
    writeResult(`scaling-throttle-${args.throttle}.json`, {
      bench: 'scaling',
      at: new Date().toISOString(),
      machine: machine(),
      loadavg: loadavg(),
      args,
      points,
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
