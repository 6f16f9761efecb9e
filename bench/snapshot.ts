/**
 * bench/snapshot: the time of a unit's snapshot (the `snapshot_taken` event's durationMs in
 * the ledger) against a raw `pg_dump -Fc -t <table>` of the same tables, run directly with
 * the same pg_dump binary and the same libpq environment. Goal: within 1.1x. And the
 * snapshot's cost must grow with the tables the unit touches, not with the database's size:
 * the same unit (it updates one row of a ~200k-row table) is snapshotted in a database that
 * holds only that table, in one that also holds 5 other tables of 500k rows, and in one
 * that also holds 1,000 small tables (catalog size); plus a unit that touches two tables.
 *
 * Runs alternate (tenantify, raw, then raw, tenantify...), every scenario each round; medians.
 * Each tenantify run starts with the ledger schema dropped, so the unit is pending again.
 *
 *   npx tsx bench/snapshot.ts [--rounds 7] [--rows 200000] [--other-rows 500000] [--others 5] [--many 1000] [--no-build]
 */
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPgTool, libpqEnvironment } from '../src/db/pg-tools.js';
import { startThrowawayPostgres } from '../src/db/throwaway.js';
import {
  build,
  expectSuccess,
  fmt,
  machine,
  median,
  repoRoot,
  table,
  timed,
  writeResult,
  withDatabase,
  runStatements as query,
} from './lib.js';

interface Args {
  rounds: number;
  rows: number;
  otherRows: number;
  others: number;
  many: number;
  build: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { rounds: 7, rows: 200_000, otherRows: 500_000, others: 5, many: 1000, build: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rounds') args.rounds = Number(argv[++i]);
    else if (a === '--rows') args.rows = Number(argv[++i]);
    else if (a === '--other-rows') args.otherRows = Number(argv[++i]);
    else if (a === '--others') args.others = Number(argv[++i]);
    else if (a === '--many') args.many = Number(argv[++i]);
    else if (a === '--no-build') args.build = false;
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

interface Scenario {
  name: string;
  database: string;
  /** The tables the unit writes (and so its snapshot holds). */
  tables: string[];
  plan: string;
}

interface Sample {
  scenario: string;
  round: number;
  tenantifySnapshotMs: number;
  tenantifyApplyMs: number;
  tenantifyBytes: number;
  tenantifyFormat: string;
  rawMs: number;
  rawBytes: number;
  rawSha256Ms: number;
}

function tableSql(name: string, rows: number): string[] {
  return [
    `CREATE TABLE ${name} (id bigint PRIMARY KEY, email text NOT NULL, name text NOT NULL, plan text NOT NULL, created_at timestamptz NOT NULL,
                           flag boolean NOT NULL DEFAULT false, note text)`,
    `INSERT INTO ${name} SELECT i, 'user' || i || '@example.com', 'Name ' || md5(i::text), (ARRAY['free','pro','team'])[1 + i % 3],
                                timestamptz '2020-01-01' + i * interval '1 minute', false, CASE WHEN i % 5 = 0 THEN 'note ' || i END
                           FROM generate_series(1, ${rows}) i`,
    `CREATE INDEX ${name}_email_idx ON ${name} (email)`,
  ];
}

async function sha256Ms(file: string): Promise<number> {
  const started = performance.now();
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  hash.digest('hex');
  return performance.now() - started;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const benchStarted = performance.now();
  if (args.build) {
    process.stderr.write('building tenantify (npm run build)...\n');
    build();
  }
  const pgDump = findPgTool('pg_dump');
  if (!pgDump) throw new Error('pg_dump not found');
  const node = process.execPath;
  const cli = join(repoRoot, 'bin', 'tenantify');
  const server = await startThrowawayPostgres({
    prefer: (process.env['TENANTIFY_THROWAWAY'] as 'docker' | 'local' | undefined) ?? 'local',
    log: (l) => process.stderr.write(`${l}\n`),
  });
  const work = mkdtempSync(join(tmpdir(), 'tenantify-bench-snapshot-'));
  const samples: Sample[] = [];
  const sizes: Record<string, unknown> = {};
  let serverVersion = '';
  try {
    const admin = server.url;
    serverVersion = String((await query(admin, ['SHOW server_version']))[0]?.rows[0]?.server_version);
    process.stderr.write(`PostgreSQL ${serverVersion}, ${pgDump.path} ${pgDump.version}; loading...\n`);
    const loadStarted = performance.now();
    // The same accounts table (same rows) in each database.
    await query(admin, ['CREATE DATABASE snap_small', 'CREATE DATABASE snap_big', 'CREATE DATABASE snap_many']);
    await query(withDatabase(admin, 'snap_small'), [...tableSql('accounts', args.rows), 'VACUUM (FREEZE, ANALYZE)']);
    const others = Array.from({ length: args.others }, (_, i) => `other_${i + 1}`);
    await query(withDatabase(admin, 'snap_big'), [
      ...tableSql('accounts', args.rows),
      ...others.flatMap((t) => tableSql(t, args.otherRows)),
      'VACUUM (FREEZE, ANALYZE)',
    ]);
    await query(withDatabase(admin, 'snap_many'), [
      ...tableSql('accounts', args.rows),
      `DO $$ BEGIN FOR i IN 1..${args.many} LOOP
         EXECUTE format('CREATE TABLE small_%s (id bigint PRIMARY KEY, account_id bigint, label text, created_at timestamptz DEFAULT now())', i);
         EXECUTE format('CREATE INDEX ON small_%s (account_id)', i);
         EXECUTE format('INSERT INTO small_%s (id, account_id, label) SELECT g, g, ''x'' FROM generate_series(1, 10) g', i);
       END LOOP; END $$`,
      'VACUUM (FREEZE, ANALYZE)',
    ]);
    for (const db of ['snap_small', 'snap_big', 'snap_many']) {
      const [r] = await query(withDatabase(admin, db), [
        "SELECT pg_size_pretty(pg_database_size(current_database())) AS db, pg_size_pretty(pg_total_relation_size('accounts')) AS accounts, (SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace) AS tables",
      ]);
      sizes[db] = r?.rows[0];
    }
    process.stderr.write(`loaded in ${fmt((performance.now() - loadStarted) / 1000)} s: ${JSON.stringify(sizes)}\n`);

    const makePlan = (name: string, tables: string[]): string => {
      const dir = join(work, 'plans', name);
      mkdirSync(join(dir, 'migrations'), { recursive: true });
      writeFileSync(
        join(dir, 'migrations', '0001_touch.sql'),
        tables.map((t) => `UPDATE ${t} SET flag = NOT flag WHERE id = 1;\n`).join(''),
      );
      writeFileSync(join(dir, 'tenantify.config.json'), `${JSON.stringify({ snapshotDir: join(work, 'snapshots') }, null, 2)}\n`);
      return dir;
    };
    const scenarios: Scenario[] = [
      { name: 'accounts alone in its database', database: 'snap_small', tables: ['accounts'], plan: makePlan('one', ['accounts']) },
      {
        name: `accounts + ${args.others} x ${args.otherRows} untouched rows`,
        database: 'snap_big',
        tables: ['accounts'],
        plan: makePlan('one', ['accounts']),
      },
      {
        name: `accounts + ${args.many} small untouched tables`,
        database: 'snap_many',
        tables: ['accounts'],
        plan: makePlan('one', ['accounts']),
      },
      ...(args.others > 0
        ? [
            {
              name: `accounts and other_1 (both touched), big db`,
              database: 'snap_big',
              tables: ['accounts', 'other_1'],
              plan: makePlan('two', ['accounts', 'other_1']),
            },
          ]
        : []),
    ];

    const runTenantify = async (s: Scenario): Promise<{ snapshotMs: number; applyMs: number; bytes: number; format: string }> => {
      const url = withDatabase(admin, s.database);
      await query(url, ['DROP SCHEMA IF EXISTS tenantify CASCADE']);
      const run = await timed(node, [cli, 'apply', '--dir', s.plan, '-d', url, '--no-color'], { env: { ...process.env, NO_COLOR: '1' } });
      expectSuccess(`tenantify apply (${s.name})`, run);
      const [events] = await query(url, ["SELECT detail FROM tenantify.events WHERE event = 'snapshot_taken' ORDER BY id DESC LIMIT 1"]);
      const detail = events?.rows[0]?.detail as
        { durationMs: number; bytes: number; format: string; tables: string[]; file: string } | undefined;
      if (!detail) throw new Error(`no snapshot_taken event (${s.name}): ${run.stderr.slice(-1000)}`);
      const expected = s.tables
        .map((t) => `public.${t}`)
        .sort()
        .join(',');
      if ([...detail.tables].sort().join(',') !== expected)
        throw new Error(`the snapshot holds ${detail.tables.join(', ')}, expected ${expected}`);
      rmSync(join(work, 'snapshots'), { recursive: true, force: true });
      return { snapshotMs: detail.durationMs, applyMs: run.ms, bytes: detail.bytes, format: detail.format };
    };
    const runRaw = async (s: Scenario): Promise<{ ms: number; bytes: number; sha256Ms: number }> => {
      const url = withDatabase(admin, s.database);
      const file = join(work, 'raw.dump');
      const argv = ['--no-password', '-f', file, '-Fc', ...s.tables.flatMap((t) => ['-t', `public.${t}`])];
      const run = await timed(pgDump.path, argv, { env: libpqEnvironment(url) });
      expectSuccess(`pg_dump (${s.name})`, run);
      const bytes = statSync(file).size;
      const sha = await sha256Ms(file);
      rmSync(file, { force: true });
      return { ms: run.ms, bytes, sha256Ms: sha };
    };

    // One warm-up of each (file cache, catalog cache), not counted.
    for (const s of scenarios) {
      await runTenantify(s);
      await runRaw(s);
    }
    for (let round = 1; round <= args.rounds; round++) {
      for (const s of scenarios) {
        await query(admin, ['CHECKPOINT']);
        let t: Awaited<ReturnType<typeof runTenantify>>;
        let r: Awaited<ReturnType<typeof runRaw>>;
        if (round % 2 === 1) {
          t = await runTenantify(s);
          r = await runRaw(s);
        } else {
          r = await runRaw(s);
          t = await runTenantify(s);
        }
        samples.push({
          scenario: s.name,
          round,
          tenantifySnapshotMs: t.snapshotMs,
          tenantifyApplyMs: t.applyMs,
          tenantifyBytes: t.bytes,
          tenantifyFormat: t.format,
          rawMs: r.ms,
          rawBytes: r.bytes,
          rawSha256Ms: r.sha256Ms,
        });
        process.stderr.write(
          `  round ${round} ${s.name.padEnd(46)} snapshot ${t.snapshotMs} ms (apply ${Math.round(t.applyMs)} ms)  raw pg_dump ${Math.round(r.ms)} ms  sha256 ${Math.round(r.sha256Ms)} ms\n`,
        );
      }
    }
    const summary = scenarios.map((s) => {
      const of = samples.filter((x) => x.scenario === s.name);
      return {
        scenario: s.name,
        database: s.database,
        tables: s.tables,
        runs: of.length,
        snapshotMs: median(of.map((x) => x.tenantifySnapshotMs)),
        rawMs: median(of.map((x) => x.rawMs)),
        rawPlusSha256Ms: median(of.map((x) => x.rawMs + x.rawSha256Ms)),
        sha256Ms: median(of.map((x) => x.rawSha256Ms)),
        pairedRatio: median(of.map((x) => x.tenantifySnapshotMs / x.rawMs)),
        applyMs: median(of.map((x) => x.tenantifyApplyMs)),
        bytes: median(of.map((x) => x.tenantifyBytes)),
        rawBytes: median(of.map((x) => x.rawBytes)),
        format: of[0]?.tenantifyFormat,
      };
    });
    const base = summary[0];
    console.log(
      `\nsnapshot of a unit vs raw pg_dump -Fc -t (same binary ${pgDump.path} ${pgDump.version}, same env); medians of ${args.rounds} alternated rounds`,
    );
    console.log(
      table(
        [
          'scenario',
          'db size',
          'snapshot ms',
          'raw pg_dump ms',
          'ratio',
          'paired ratio',
          'raw+sha256 ms',
          'sha256 ms',
          'dump bytes',
          'vs alone: snapshot',
          'vs alone: raw',
          'apply wall ms',
        ],
        summary.map((s) => [
          s.scenario,
          String((sizes[s.database] as { db?: string } | undefined)?.db ?? ''),
          String(Math.round(s.snapshotMs)),
          String(Math.round(s.rawMs)),
          `${fmt(s.snapshotMs / s.rawMs, 2)}x`,
          `${fmt(s.pairedRatio, 2)}x`,
          String(Math.round(s.rawPlusSha256Ms)),
          String(Math.round(s.sha256Ms)),
          String(s.bytes),
          base ? `${fmt(s.snapshotMs / base.snapshotMs, 2)}x` : '-',
          base ? `${fmt(s.rawMs / base.rawMs, 2)}x` : '-',
          String(Math.round(s.applyMs)),
        ]),
      ),
    );
    console.log("snapshot ms: the ledger's snapshot_taken durationMs (tenantify's own timing: directory, pg_dump, sha256 of the file).");
    console.log('raw pg_dump ms: spawn to exit of pg_dump --no-password -Fc -t public.<table> -f <file>, measured here.');
    if (base) {
      const worst = Math.max(...summary.map((s) => s.snapshotMs / s.rawMs));
      const big = summary[1];
      console.log(
        `\ngoal snapshot within 1.1x of raw pg_dump: ${fmt(base.snapshotMs / base.rawMs, 2)}x alone, worst scenario ${fmt(worst, 2)}x -> ${worst <= 1.1 ? 'MET' : 'NOT MET'}`,
      );
      if (big)
        console.log(
          `goal flat with database size: ${fmt(big.snapshotMs / base.snapshotMs, 2)}x with ${args.others} x ${args.otherRows} untouched rows (raw pg_dump ${fmt(big.rawMs / base.rawMs, 2)}x)`,
        );
    }
    const file = writeResult('snapshot.json', {
      bench: 'snapshot',
      at: new Date().toISOString(),
      machine: machine(),
      args,
      serverVersion,
      pgDump,
      sizes,
      summary,
      samples,
      benchSeconds: (performance.now() - benchStarted) / 1000,
    });
    console.log(`\n${file} (${fmt((performance.now() - benchStarted) / 1000, 0)} s in all)`);
  } finally {
    await server.close();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
