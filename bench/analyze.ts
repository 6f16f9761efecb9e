/**
 * bench/analyze: `tenantify tenancy analyze` against the hand-written queries a DBA would
 * run for the same answers, and the catalog-only analyze of a very wide schema.
 *
 * 1. Data: restaurant-platform's legacy.sql grown with its scale.sql (default scale
 *    1,000,000: about 5 million rows). Contenders, alternated, medians over --rounds:
 *    - tenantify: `node bin/tenantify tenancy analyze -d URL --owner restaurants --json`
 *      (node start, catalog, graph, and the counts on its three connections);
 *    - psql: `psql -X -q -f hand-written.sql`: the same counts written by hand, one after
 *      the other on one connection (the conflicts of each consistency edge; no query for
 *      unresolved rows, as every path here is NOT NULL and validated, which both know).
 *    The two must report the same numbers. Goal: tenantify ≤ 1.5x psql.
 * 2. Catalog: a generated schema of --tables tables (default 2,000), each with a primary
 *    key, a few columns, one or two foreign keys to earlier tables (some nullable), an
 *    index; `tenancy analyze --no-data --json`, process wall time and the in-process
 *    catalog read + graph. Goal: under 2 s.
 *
 *   npx tsx bench/analyze.ts [--scale 1000000] [--rounds 5] [--tables 2000] [--catalog-only] [--no-build]
 *
 * Wall times on a shared machine drift with its load: the catalog part also reports the
 * process's own CPU time (user + system, /usr/bin/time) and the load average.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { analyze } from '../src/app/tenancy-analyze.js';
import { findPgTool, libpqEnvironment } from '../src/db/pg-tools.js';
import { startThrowawayPostgres } from '../src/db/throwaway.js';
import {
  build,
  contenderEnv,
  expectSuccess,
  fmt,
  loadScaledFixture,
  machine,
  median,
  nodeEnvNote,
  repoRoot,
  table,
  timed,
  writeResult,
} from './lib.js';

interface Args {
  scale: number;
  rounds: number;
  tables: number;
  build: boolean;
  keepNodeEnv: boolean;
  /** Only the catalog part (the data part loads millions of rows first). */
  catalogOnly: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { scale: 1_000_000, rounds: 5, tables: 2000, build: true, keepNodeEnv: false, catalogOnly: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--scale') args.scale = Number(argv[++i]);
    else if (a === '--rounds') args.rounds = Number(argv[++i]);
    else if (a === '--tables') args.tables = Number(argv[++i]);
    else if (a === '--no-build') args.build = false;
    else if (a === '--keep-node-env') args.keepNodeEnv = true;
    else if (a === '--catalog-only') args.catalogOnly = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

/** What a DBA writes by hand: for each consistency edge, rows whose two sides name different restaurants. */
const handWritten = `
SELECT count(*) AS reservations_customer FROM reservations r JOIN customers c ON c.id = r.customer_id WHERE r.restaurant_id <> c.restaurant_id;
SELECT count(*) AS recipe_ingredients_recipe FROM recipe_ingredients ri JOIN ingredients i ON i.id = ri.ingredient_id JOIN recipes r ON r.id = ri.recipe_id WHERE i.restaurant_id <> r.restaurant_id;
SELECT count(*) AS menu_items_recipe FROM menu_items mi JOIN menus m ON m.id = mi.menu_id JOIN recipes r ON r.id = mi.recipe_id WHERE m.restaurant_id <> r.restaurant_id;
`;

async function exec(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A wide schema: `tables` tables, each referencing one or two earlier ones. */
function wideSchema(tables: number): string {
  const lines = ['CREATE TABLE t0 (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());'];
  for (let i = 1; i < tables; i++) {
    const parent = (i * 7919 + 13) % i;
    const other = (i * 104729 + 7) % i;
    const second = i % 3 === 0 && other !== parent ? `, other_id bigint REFERENCES t${other}` : '';
    lines.push(
      `CREATE TABLE t${i} (id bigint PRIMARY KEY, parent_id bigint ${i % 5 === 0 ? '' : 'NOT NULL '}REFERENCES t${parent}${second}, ` +
        `name text, amount numeric(12,2), external_ref_id bigint, created_at timestamptz NOT NULL DEFAULT now());`,
      `CREATE INDEX t${i}_parent ON t${i} (parent_id);`,
    );
  }
  return lines.join('\n');
}

/** 1. Data: the fixture grown, then the two contenders alternated. */
async function dataPart(args: Args, serverUrl: string, dir: string, psqlPath: string, env: NodeJS.ProcessEnv) {
  const dbUrl = (name: string): string => {
    const u = new URL(serverUrl);
    u.pathname = `/${name}`;
    return u.toString();
  };
  await exec(serverUrl, 'CREATE DATABASE bench_data');
  const url = dbUrl('bench_data');
  const { rows, ms } = await loadScaledFixture(url, 'restaurant-platform', args.scale);
  process.stderr.write(`loaded restaurant-platform at scale ${args.scale}: ${rows.toLocaleString('en')} rows in ${fmt(ms / 1000)} s\n`);
  const handFile = join(dir, 'hand-written.sql');
  writeFileSync(handFile, handWritten);

  const contenders = {
    tenantify: () =>
      timed(
        process.execPath,
        [join(repoRoot, 'bin/tenantify'), 'tenancy', 'analyze', '-d', url, '--dir', dir, '--owner', 'restaurants', '--json'],
        { env },
      ),
    psql: () => timed(psqlPath, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-f', handFile], { env: libpqEnvironment(url) }),
  };
  const times: Record<keyof typeof contenders, number[]> = { tenantify: [], psql: [] };
  let answers: { tenantify?: number[]; psql?: number[] } = {};
  // One warm-up each (caches), then alternated rounds, the order flipped each round.
  for (const name of ['tenantify', 'psql'] as const) expectSuccess(name, await contenders[name]());
  for (let round = 0; round < args.rounds; round++) {
    const order = round % 2 === 0 ? (['tenantify', 'psql'] as const) : (['psql', 'tenantify'] as const);
    for (const name of order) {
      const run = await contenders[name]();
      expectSuccess(name, run);
      times[name].push(run.ms);
      if (name === 'psql') answers = { ...answers, psql: run.stdout.trim().split('\n').map(Number) };
      else {
        const doc = JSON.parse(run.stdout) as { tables: { consistency?: { conflicts: number }[] }[] };
        answers = { ...answers, tenantify: doc.tables.flatMap((t) => (t.consistency ?? []).map((e) => e.conflicts)) };
      }
    }
  }
  const sum = (xs: number[] = []): number => xs.reduce((a, b) => a + b, 0);
  if (sum(answers.tenantify) !== sum(answers.psql))
    throw new Error(`the contenders disagree: tenantify ${answers.tenantify}, psql ${answers.psql}`);
  const tenantifyMs = median(times.tenantify);
  const psqlMs = median(times.psql);

  return { rows, times, tenantifyMs, psqlMs, conflicts: sum(answers.psql) };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.build) build();
  const psql = findPgTool('psql');
  if (!psql) throw new Error('psql not found');
  const env = contenderEnv(args.keepNodeEnv);
  const server = await startThrowawayPostgres({ prefer: 'local', log: (l) => process.stderr.write(`${l}\n`) });
  const dir = mkdtempSync(join(tmpdir(), 'bench-analyze-'));
  try {
    const dbUrl = (name: string): string => {
      const u = new URL(server.url);
      u.pathname = `/${name}`;
      return u.toString();
    };

    const data = args.catalogOnly ? undefined : await dataPart(args, server.url, dir, psql.path, env);

    // 2. Catalog only
    await exec(server.url, 'CREATE DATABASE bench_wide');
    const wideUrl = dbUrl('bench_wide');
    await exec(wideUrl, wideSchema(args.tables));
    await exec(wideUrl, 'ANALYZE');
    const wideRuns: number[] = [];
    const wideCpu: number[] = [];
    const inProcess: number[] = [];
    const inProcessCpu: number[] = [];
    for (let round = 0; round < args.rounds; round++) {
      const run = await timed(
        process.execPath,
        [join(repoRoot, 'bin/tenantify'), 'tenancy', 'analyze', '-d', wideUrl, '--dir', dir, '--owner', 't0', '--no-data', '--json'],
        { env },
      );
      expectSuccess('tenantify --no-data', run);
      const doc = JSON.parse(run.stdout) as { tables: unknown[] };
      if (doc.tables.length !== args.tables) throw new Error(`expected ${args.tables} tables, got ${doc.tables.length}`);
      wideRuns.push(run.ms);
      if (run.cpuMs !== undefined) wideCpu.push(run.cpuMs);
      const cpu = process.cpuUsage();
      const t0 = performance.now();
      await analyze({ url: wideUrl, dir, owner: 't0', data: false });
      inProcess.push(performance.now() - t0);
      const used = process.cpuUsage(cpu);
      inProcessCpu.push((used.user + used.system) / 1000);
    }

    if (data) {
      console.log(
        `\ntenancy analyze, restaurant-platform at scale ${args.scale} (${data.rows.toLocaleString('en')} rows), ${args.rounds} alternated rounds, medians:`,
      );
      console.log(
        table(
          ['contender', 'median ms', 'runs ms'],
          [
            ['tenantify tenancy analyze --json', fmt(data.tenantifyMs, 0), data.times.tenantify.map((t) => fmt(t, 0)).join(' ')],
            ['psql -f hand-written.sql', fmt(data.psqlMs, 0), data.times.psql.map((t) => fmt(t, 0)).join(' ')],
          ],
        ),
      );
      console.log(
        `ratio tenantify / psql: ${(data.tenantifyMs / data.psqlMs).toFixed(2)}x (goal ≤ 1.5x); both count ${data.conflicts} conflicts`,
      );
    }
    console.log(`\ncatalog only (--no-data), ${args.tables} tables, goal < 2000 ms:`);
    console.log(
      table(
        ['', 'median ms', 'runs ms'],
        [
          ['process wall (node start to exit)', fmt(median(wideRuns), 0), wideRuns.map((t) => fmt(t, 0)).join(' ')],
          ['process CPU (user + system)', wideCpu.length ? fmt(median(wideCpu), 0) : '-', wideCpu.map((t) => fmt(t, 0)).join(' ')],
          ['in process wall (catalog + graph)', fmt(median(inProcess), 0), inProcess.map((t) => fmt(t, 0)).join(' ')],
          ['in process CPU', fmt(median(inProcessCpu), 0), inProcessCpu.map((t) => fmt(t, 0)).join(' ')],
        ],
      ),
    );
    console.log(
      `load average while measuring: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} on ${cpus().length} cores`,
    );
    const note = nodeEnvNote(args.keepNodeEnv);
    if (note) console.log(note);
    const file = writeResult('analyze.json', {
      machine: machine(),
      loadavg: loadavg(),
      scale: args.scale,
      rounds: args.rounds,
      ...(data
        ? { data: { rows: data.rows, tenantifyMs: data.times.tenantify, psqlMs: data.times.psql, ratio: data.tenantifyMs / data.psqlMs } }
        : {}),
      catalog: { tables: args.tables, processMs: wideRuns, processCpuMs: wideCpu, inProcessMs: inProcess, inProcessCpuMs: inProcessCpu },
    });
    console.log(`figures: ${file}`);
  } finally {
    await server.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
