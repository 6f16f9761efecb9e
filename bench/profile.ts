/**
 * Where tenantify's milliseconds go on the overhead bench's plan, without touching src/:
 *   - runs `node --import bench/instrument.mjs bin/tenantify apply` (query counts and time
 *     per kind, the client's gaps between queries, when the first query starts),
 *   - with --cpu-prof: self time by package / file,
 *   - the plan load alone (libpg-query WASM load and parse), in this process.
 *
 *   npx tsx bench/profile.ts [--units 200] [--runs 3] [--cpu-prof] [--no-build] [--bin path/to/bin/tenantify] [--tenantify-args "--no-snapshot"]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startThrowawayPostgres } from '../src/db/throwaway.js';
import { generatePlans } from './plans.js';
import { build, expectSuccess, fmt, median, repoRoot, table, timed, writeResult } from './lib.js';

interface Trace {
  preloadAt: number;
  connectAt: number | null;
  connectMs: number;
  firstQueryAt: number | null;
  lastQueryEnd: number | null;
  exitAt: number;
  queryMs: number;
  gapBetweenQueriesMs: number;
  queries: Record<string, { count: number; ms: number }>;
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

function parseArgs(argv: string[]): { units: number; runs: number; cpuProf: boolean; build: boolean; bin: string; extra: string[] } {
  const args = { units: 200, runs: 3, cpuProf: false, build: true, bin: 'bin/tenantify', extra: [] as string[] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--units') args.units = Number(argv[++i]);
    else if (a === '--runs') args.runs = Number(argv[++i]);
    else if (a === '--cpu-prof') args.cpuProf = true;
    else if (a === '--no-build') args.build = false;
    else if (a === '--bin') args.bin = String(argv[++i]);
    else if (a === '--tenantify-args') args.extra = String(argv[++i]).split(' ').filter(Boolean);
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

/** Self time per bucket: node internals, each package, tenantify's own files, GC, idle. */
export function summariseCpuProfile(profile: CpuProfile): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const buckets = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i] as number);
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const url = node?.callFrame.url ?? '';
    const fn = node?.callFrame.functionName ?? '';
    let bucket: string;
    if (fn === '(idle)') bucket = '(idle: waiting for the server)';
    else if (fn === '(garbage collector)') bucket = '(garbage collector)';
    else if (fn === '(program)') bucket = '(program: V8/native, incl. compile)';
    else if (url.includes('/node_modules/')) bucket = `npm:${/\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? url}`;
    else if (url.includes('/dist/')) bucket = `tenantify:${url.slice(url.indexOf('/dist/') + 6)}`;
    else if (url.startsWith('node:')) bucket = 'node: internals (module loader, streams, net...)';
    else if (url.startsWith('wasm://')) bucket = 'wasm (libpg-query)';
    else bucket = url ? `other:${url}` : `native:${fn}`;
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + dt);
  }
  return buckets;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.build) build();
  const plans = generatePlans(args.units);
  const server = await startThrowawayPostgres({ prefer: 'local' });
  const admin = new pg.Client({ connectionString: server.url });
  const traces: Trace[] = [];
  const wall: number[] = [];
  const cpu: number[] = [];
  const profDir = mkdtempSync(join(tmpdir(), 'tenantify-cpuprof-'));
  const report: Record<string, unknown> = { units: args.units, runs: args.runs };
  try {
    await admin.connect();
    for (let run = 1; run <= args.runs; run++) {
      const db = `profile_${run}`;
      await admin.query(`DROP DATABASE IF EXISTS ${db}`);
      await admin.query(`CREATE DATABASE ${db}`);
      const url = new URL(server.url);
      url.pathname = `/${db}`;
      const traceFile = join(profDir, `trace-${run}.json`);
      const nodeArgs = ['--import', join(repoRoot, 'bench', 'instrument.mjs')];
      if (args.cpuProf && run === args.runs) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', '200');
      const result = await timed(
        process.execPath,
        [...nodeArgs, args.bin, 'apply', '-d', url.toString(), '--dir', plans.tenantify, '--no-color', ...args.extra],
        {
          env: { ...process.env, BENCH_TRACE: traceFile, NO_COLOR: '1' },
        },
      );
      expectSuccess(`tenantify run ${run}`, result);
      await admin.query(`DROP DATABASE ${db}`);
      wall.push(result.ms);
      if (result.cpuMs !== undefined) cpu.push(result.cpuMs);
      traces.push(JSON.parse(readFileSync(traceFile, 'utf8')) as Trace);
    }
  } finally {
    await admin.end().catch(() => {});
    await server.close();
  }

  // The run's phases, medians over runs.
  const m = (f: (t: Trace) => number): number => median(traces.map(f));
  const phases: [string, number][] = [
    ['node bootstrap (until the preload runs)', m((t) => t.preloadAt)],
    ['module loading + plan load (config, files, libpg-query WASM, parse)', m((t) => (t.connectAt ?? 0) - t.preloadAt)],
    ['connect (TCP + startup)', m((t) => t.connectMs)],
    ['queries: waiting for results (all kinds)', m((t) => t.queryMs)],
    ['client gaps between queries (JS work per unit)', m((t) => t.gapBetweenQueriesMs)],
    ['after the last query until exit', m((t) => t.exitAt - (t.lastQueryEnd ?? t.exitAt))],
  ];
  const exitMedian = m((t) => t.exitAt);
  console.log(
    `\n${args.bin} apply ${args.extra.join(' ')}, ${args.units} units, ${args.runs} runs (medians); wall ${fmt(median(wall), 0)} ms, in-process until exit ${fmt(exitMedian, 0)} ms, client CPU ${fmt(median(cpu), 0)} ms\n`,
  );
  console.log(
    table(
      ['phase', 'ms', 'ms/unit'],
      phases.map(([p, ms]) => [p, fmt(ms), fmt(ms / args.units, 3)]),
    ),
  );
  const kinds = Object.keys(traces[0]?.queries ?? {});
  const kindRows = kinds.map((k) => {
    const countK = traces[0]?.queries[k]?.count ?? 0;
    const ms = m((t) => t.queries[k]?.ms ?? 0);
    return [k, String(countK), fmt(ms), fmt(ms / Math.max(1, countK), 3), fmt(ms / args.units, 3)];
  });
  console.log(`\nqueries by kind (count in one run; ms = call to result, median over runs)\n`);
  console.log(table(['kind', 'count', 'ms', 'ms/query', 'ms/unit'], kindRows));
  report['wallMs'] = wall;
  report['clientCpuMs'] = cpu;
  report['phases'] = Object.fromEntries(phases);
  report['queries'] = Object.fromEntries(kinds.map((k, i) => [k, kindRows[i]]));

  if (args.cpuProf) {
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (file) {
      const buckets = summariseCpuProfile(JSON.parse(readFileSync(join(profDir, file), 'utf8')) as CpuProfile);
      const total = [...buckets.values()].reduce((a, b) => a + b, 0);
      const rows = [...buckets].sort((a, b) => b[1] - a[1]).slice(0, 25);
      console.log(`\ncpu profile of the last run: self time by bucket (total ${fmt(total, 0)} ms)\n`);
      console.log(
        table(
          ['bucket', 'ms', '%'],
          rows.map(([b, ms]) => [b, fmt(ms), fmt((ms / total) * 100)]),
        ),
      );
      report['cpuProfile'] = Object.fromEntries(rows.map(([b, ms]) => [b, Math.round(ms * 10) / 10]));
    }
  }

  // The plan load alone: libpg-query's WASM load, and parsing every unit.
  const t0 = performance.now();
  const mod = await import('libpg-query');
  const t1 = performance.now();
  await mod.loadModule();
  const t2 = performance.now();
  const { loadConfig } = await import('../src/plan/config.js');
  const { loadPlan } = await import('../src/plan/load.js');
  const config = await loadConfig(plans.tenantify);
  const t3 = performance.now();
  await loadPlan(plans.tenantify, config);
  const t4 = performance.now();
  await loadPlan(plans.tenantify, config);
  const t5 = performance.now();
  const load = [
    ['import libpg-query (JS)', t1 - t0],
    ['libpg-query loadModule() (WASM compile + instantiate)', t2 - t1],
    [`loadPlan of ${args.units} units (first, parser loaded)`, t4 - t3],
    [`loadPlan of ${args.units} units (again)`, t5 - t4],
  ] as [string, number][];
  console.log('\nplan loading, in this process (tsx)\n');
  console.log(
    table(
      ['step', 'ms'],
      load.map(([s, ms]) => [s, fmt(ms)]),
    ),
  );
  report['planLoad'] = Object.fromEntries(load);
  rmSync(plans.root, { recursive: true, force: true });
  if (!args.cpuProf) rmSync(profDir, { recursive: true, force: true });
  else console.log(`\ncpu profile kept in ${profDir}`);
  console.log(`\nresults: ${writeResult('profile.json', report)}`);
}

await main();
