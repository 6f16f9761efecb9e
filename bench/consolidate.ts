/**
 * `tenancy consolidate` against the floor of moving the same bytes, on one throwaway server:
 *
 *   1. fixtures/schema-per-customer grown by --scale (default 10: customers of 20 to 25,000
 *      users, 100 to 125,000 tasks); the apply of the consolidation plan (--from-schemas,
 *      eight customers, --ids keep, and again --ids remap) beside `pg_dump --data-only -n
 *      customer_* | psql` of the same schemas into a database that has their tables (no
 *      key, no rewrite, no verify: the floor); and --ids keep with --parallel (default 4).
 *      Alternated, --rounds times (default 1); medians and ratios.
 *   2. one customer grown by --db-scale (default 40: 100,000 users, 500,000 tasks) in a
 *      database of its own, consolidated with --from-databases: the apply's time beside
 *      `pg_dump --data-only | psql` of the same tables into a database that has them (the
 *      floor), the bytes COPY carried, and the peak memory (maxRSS) of the tenantify process.
 *      `--db-scale 470` is about 1 GB on disk.
 *
 *   npx tsx bench/consolidate.ts [--scale N] [--parallel N[,N...]] [--db-scale N[,N...]] [--rounds N] [--databases-only | --schemas-only]
 *                                [--compare DIR]
 *
 * --compare DIR: part 1's applies again with another build of tenantify (DIR/bin/tenantify,
 * e.g. a copy of main's bin/, dist/ and package.json), alternated with this one's in each
 * round: before and after in one run, at the same load.
 * Several --db-scale values (`--db-scale 10,100`) measure the peak at each size, to show it
 * does not grow with the data; --databases-only skips part 1.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { startThrowawayPostgres } from '../src/db/throwaway.js';
import { repoRoot } from './lib.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const scale = arg('--scale', 10);
const dbScaleArg = process.argv.indexOf('--db-scale');
const dbScales =
  dbScaleArg === -1
    ? [40]
    : String(process.argv[dbScaleArg + 1])
        .split(',')
        .map(Number);
const databasesOnly = process.argv.includes('--databases-only');
const schemasOnly = process.argv.includes('--schemas-only');
const parallelArg = process.argv.indexOf('--parallel');
const parallels =
  parallelArg === -1
    ? [4]
    : String(process.argv[parallelArg + 1])
        .split(',')
        .map(Number);
const rounds = arg('--rounds', 1);
const bin = join(repoRoot, 'bin', 'tenantify');
const compareArg = process.argv.indexOf('--compare');
const compareBin = compareArg === -1 ? undefined : join(String(process.argv[compareArg + 1]), 'bin', 'tenantify');

async function sql(url: string, text: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env, shell = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { env, shell, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) =>
      code === 0
        ? resolve(performance.now() - started)
        : reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`)),
    );
  });
}

function fixtureAt(multiplier: number): string {
  return readFileSync(join(repoRoot, 'fixtures/schema-per-customer/legacy.sql'), 'utf8').replace(
    /SELECT pg_temp\.customer\('(\w+)', (\d+)(, true)?\);/g,
    (_m, name: string, n: string, drifted?: string) => `SELECT pg_temp.customer('${name}', ${Number(n) * multiplier}${drifted ?? ''});`,
  );
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const server = await startThrowawayPostgres();
const db = (name: string) => {
  const u = new URL(server.url);
  u.pathname = `/${name}`;
  return u.toString();
};
const work = mkdtempSync(join(tmpdir(), 'bench-consolidate-'));
try {
  if (!databasesOnly) await schemas();
  if (!schemasOnly) for (const dbScale of dbScales) await databases(dbScale);
} finally {
  rmSync(work, { recursive: true, force: true });
  await server.close();
}

async function schemas(): Promise<void> {
  console.error(`loading the fixture at scale ${scale}...`);
  await sql(db('postgres'), 'CREATE DATABASE fx');
  await sql(db('fx'), fixtureAt(scale));
  await sql(db('fx'), 'DROP SCHEMA customer_zeta CASCADE');
  const [counted] = (
    await sql(
      db('fx'),
      "SELECT sum((xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text::bigint) AS n FROM information_schema.tables WHERE table_schema LIKE 'customer_%'",
    )
  ).rows as { n: string }[];
  const rows = Number(counted?.n ?? 0);
  // The floor's target: the same database with the customer schemas' tables emptied.
  const customerTables = (
    await sql(
      db('fx'),
      "SELECT string_agg(format('%I.%I', table_schema, table_name), ', ') AS t FROM information_schema.tables WHERE table_schema LIKE 'customer_%'",
    )
  ).rows[0] as { t: string };

  const modes = [
    { label: '--ids keep', args: ['--ids', 'keep'] },
    { label: '--ids remap', args: ['--ids', 'remap'] },
    ...parallels.map((n) => ({ label: `--ids keep --parallel ${n}`, args: ['--ids', 'keep', '--parallel', String(n)] })),
  ];
  const variants = modes.flatMap((m) => [
    { ...m, bin },
    ...(compareBin ? [{ label: `${m.label}, --compare`, args: m.args, bin: compareBin }] : []),
  ]);
  const times: Record<string, number[]> = Object.fromEntries([
    ...variants.map((v) => [`tenantify apply (${v.label})`, []]),
    ['pg_dump --data-only | psql', []],
  ]);
  for (let round = 0; round < rounds; round++) {
    for (const [i, variant] of variants.entries()) {
      const name = `a_${i}_${round}`;
      await sql(db('postgres'), `CREATE DATABASE ${name} TEMPLATE fx`);
      const dir = join(work, name);
      // --parallel writes a TypeScript unit, which imports tenantify.
      mkdirSync(join(dir, 'node_modules'), { recursive: true });
      symlinkSync(dirname(dirname(variant.bin)), join(dir, 'node_modules', 'tenantify'));
      await run(variant.bin, ['tenancy', 'consolidate', '--from-schemas', 'customer_%', ...variant.args, '-d', db(name), '--dir', dir]);
      times[`tenantify apply (${variant.label})`]?.push(await run(variant.bin, ['apply', '-d', db(name), '--dir', dir]));
      await sql(db('postgres'), `DROP DATABASE ${name}`);
    }
    const floor = `b_${round}`;
    await sql(db('postgres'), `CREATE DATABASE ${floor} TEMPLATE fx`);
    await sql(db(floor), `TRUNCATE ${customerTables.t}`);
    times['pg_dump --data-only | psql']?.push(
      await run(
        `pg_dump --data-only -n 'customer_*' -d '${db('fx')}' | psql -q -v ON_ERROR_STOP=1 -d '${db(floor)}'`,
        [],
        process.env,
        true,
      ),
    );
    await sql(db('postgres'), `DROP DATABASE ${floor}`);
  }
  const floorMs = median(times['pg_dump --data-only | psql'] as number[]);
  console.log(`\n1. eight customer schemas, ${rows} rows (scale ${scale}), ${rounds} round(s), median wall time:`);
  for (const [name, xs] of Object.entries(times))
    console.log(`   ${name.padEnd(43)} ${(median(xs) / 1000).toFixed(2)} s   ${(median(xs) / floorMs).toFixed(2)}x the floor`);
}

async function databases(dbScale: number): Promise<void> {
  const fx = `big_fx_${dbScale}`;
  const target = `big_target_${dbScale}`;
  console.error(`\nloading one customer at scale ${dbScale} into a database of its own...`);
  await sql(db('postgres'), `CREATE DATABASE ${fx}`);
  await sql(
    db(fx),
    fixtureAt(1).replace(/SELECT pg_temp\.customer\('(\w+)', (\d+)(, true)?\);\n/g, '') +
      `SELECT pg_temp.customer('app', ${2500 * dbScale});`,
  );
  await sql(db('postgres'), `CREATE DATABASE ${target} TEMPLATE ${fx}`);
  await sql(db(target), 'DROP SCHEMA app CASCADE');
  const [size] = (
    await sql(
      db(fx),
      "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) AS size, (SELECT count(*) FROM app.tasks) + (SELECT count(*) FROM app.users) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app' AND c.relkind = 'r'",
    )
  ).rows as { size: string; n: string }[];
  writeFileSync(join(work, `sources_${dbScale}.txt`), `big ${db(fx)}\n`);
  const dir = join(work, `big_${dbScale}`);
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  symlinkSync(repoRoot, join(dir, 'node_modules', 'tenantify'));
  await run(bin, [
    'tenancy',
    'consolidate',
    '--from-databases',
    join(work, `sources_${dbScale}.txt`),
    '--source-schema',
    'app',
    '-d',
    db(target),
    '--dir',
    dir,
  ]);
  const peakFile = join(work, 'peak');
  writeFileSync(
    join(work, 'peak.cjs'),
    `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(peakFile)}, String(process.resourceUsage().maxRSS)));\n`,
  );
  const ms = await run(bin, ['apply', '-d', db(target), '--dir', dir], {
    ...process.env,
    NODE_OPTIONS: `--require ${join(work, 'peak.cjs')}`,
  });
  const peak = Number(readFileSync(peakFile, 'utf8'));
  const [staged] = (await sql(db(target), 'SELECT rows, bytes FROM consolidate_stage_big.tenantify_staged')).rows as {
    rows: string;
    bytes: string;
  }[];
  await sql(db('postgres'), `DROP DATABASE ${target}`);
  // The floor: the same tables, emptied, in a database of their own, filled by pg_dump --data-only | psql.
  const floor = `big_floor_${dbScale}`;
  await sql(db('postgres'), `CREATE DATABASE ${floor} TEMPLATE ${fx}`);
  await sql(db(floor), `TRUNCATE app.users, app.tags, app.projects, app.project_tags, app.tasks`);
  const floorMs = await run(
    `pg_dump --data-only -n app -d '${db(fx)}' | psql -q -v ON_ERROR_STOP=1 -d '${db(floor)}'`,
    [],
    process.env,
    true,
  );
  console.log(`\n2. --from-databases: one customer database, ${size?.n} users and tasks (${size?.size} on disk):`);
  console.log(
    `   apply ${(ms / 1000).toFixed(2)} s (${(ms / floorMs).toFixed(2)}x pg_dump --data-only | psql: ${(floorMs / 1000).toFixed(2)} s); COPY carried ${staged?.rows} rows, ${(Number(staged?.bytes) / 1024 / 1024).toFixed(1)} MB (binary); peak memory of tenantify ${(peak / 1024).toFixed(0)} MB`,
  );
  for (const name of [floor, fx]) await sql(db('postgres'), `DROP DATABASE ${name}`);
}
