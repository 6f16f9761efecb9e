/**
 * bench/startup: `tenantify --help` cold start against `node -e 0` (goal: within 1.5x),
 * plus what it costs to load commander alone, what `--help` loads, and the whole CLI
 * loaded (`apply --help`) with and without V8's code cache. Runs alternate
 * (A B C..., A B C..., ...); medians.
 *
 *   npx tsx bench/startup.ts [--runs 20] [--no-build] [--variant LABEL=/path/to/bin/tenantify]... [--keep-node-env]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, contenderEnv, expectSuccess, fmt, machine, median, nodeEnvNote, repoRoot, table, timed, writeResult } from './lib.js';

interface Case {
  name: string;
  command: string[];
  env?: Record<string, string>;
}

function parseArgs(argv: string[]): { runs: number; build: boolean; keepNodeEnv: boolean; variants: { label: string; bin: string }[] } {
  const args = { runs: 20, build: true, keepNodeEnv: false, variants: [] as { label: string; bin: string }[] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--runs') args.runs = Number(argv[++i]);
    else if (a === '--no-build') args.build = false;
    else if (a === '--keep-node-env') args.keepNodeEnv = true;
    else if (a === '--variant') {
      const [label, bin] = String(argv[++i]).split('=');
      if (!label || !bin) throw new Error('--variant LABEL=/path/to/bin/tenantify');
      args.variants.push({ label, bin });
    } else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.build) {
    process.stderr.write('building tenantify (npm run build)...\n');
    build();
  }
  const node = process.execPath;
  const cases: Case[] = [
    { name: 'node -e 0', command: [node, '-e', '0'] },
    { name: 'tenantify --help', command: [node, 'bin/tenantify', '--help'] },
    ...args.variants.map((v) => ({ name: `${v.label} --help`, command: [node, v.bin, '--help'] })),
    { name: "node -e \"import('commander')\"", command: [node, '--input-type=module', '-e', "await import('commander')"] },
    { name: 'tenantify --version', command: [node, 'bin/tenantify', '--version'] },
    // The whole CLI loaded (commander answers a command's help): from V8's code cache, and compiled from source.
    { name: 'tenantify apply --help', command: [node, 'bin/tenantify', 'apply', '--help'] },
    { name: 'tenantify apply --help (no code cache)', command: [node, 'bin/tenantify', 'apply', '--help'], env: { TENANTIFY_CACHE_DIR: 'none' } },
  ];
  const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  const cpu = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  // One warm-up of each (file cache), not counted.
  const runCase = (c: Case) => timed(c.command[0] as string, c.command.slice(1), { env: contenderEnv(args.keepNodeEnv, c.env) });
  for (const c of cases) expectSuccess(c.name, await runCase(c));
  for (let run = 0; run < args.runs; run++) {
    for (const c of cases) {
      const result = await runCase(c);
      expectSuccess(c.name, result);
      samples.get(c.name)?.push(result.ms);
      if (result.cpuMs !== undefined) cpu.get(c.name)?.push(result.cpuMs);
    }
  }

  // What `--help` loads: every module file, by package.
  const traceDir = mkdtempSync(join(tmpdir(), 'tenantify-modules-'));
  const modules: Record<string, unknown> = {};
  for (const c of cases.filter((x) => x.name.endsWith('--help'))) {
    const file = join(traceDir, 'modules.json');
    const bin = c.command[1] as string;
    const result = await timed(node, ['--import', join(repoRoot, 'bench', 'module-trace.mjs'), bin, '--help'], { env: { ...process.env, BENCH_MODULES: file } });
    expectSuccess(`${c.name} (module trace)`, result);
    const trace = JSON.parse(readFileSync(file, 'utf8')) as { total: number; byPackage: Record<string, number> };
    modules[c.name] = { total: trace.total, byPackage: trace.byPackage };
  }
  rmSync(traceDir, { recursive: true, force: true });

  const reference = median(samples.get('node -e 0') ?? []);
  const rows = cases.map((c) => {
    const s = samples.get(c.name) ?? [];
    const m = median(s);
    return {
      case: c.name,
      medianMs: Math.round(m * 10) / 10,
      minMs: Math.round(Math.min(...s) * 10) / 10,
      maxMs: Math.round(Math.max(...s) * 10) / 10,
      overNodeMs: Math.round((m - reference) * 10) / 10,
      ratioToNode: Math.round((m / reference) * 100) / 100,
      cpuMs: median(cpu.get(c.name) ?? []),
      samplesMs: s.map((v) => Math.round(v * 10) / 10),
    };
  });
  console.log(`\nbench/startup: ${args.runs} alternated runs each, ${process.version} (goal: tenantify --help within 1.5x of node -e 0)`);
  const envNote = nodeEnvNote(args.keepNodeEnv);
  console.log(envNote ? `environment: ${envNote}\n` : '');
  console.log(
    table(
      ['case', 'median ms', 'min ms', 'max ms', '+ms over node', 'ratio', 'CPU ms'],
      rows.map((r) => [r.case, fmt(r.medianMs), fmt(r.minMs), fmt(r.maxMs), fmt(r.overNodeMs), `${r.ratioToNode.toFixed(2)}x`, Number.isNaN(r.cpuMs) ? '-' : fmt(r.cpuMs, 0)]),
    ),
  );
  console.log('\nmodules loaded by --help (files, by package):');
  for (const [name, m] of Object.entries(modules)) console.log(`  ${name}: ${JSON.stringify(m)}`);
  const help = rows.find((r) => r.case === 'tenantify --help');
  if (help) console.log(`\ngoal ${help.ratioToNode <= 1.5 ? 'met' : 'NOT met'}: tenantify --help is ${help.ratioToNode.toFixed(2)}x node -e 0 (median)`);
  console.log(`\nresults: ${writeResult('startup.json', { bench: 'startup', at: new Date().toISOString(), runs: args.runs, machine: machine(), environment: envNote ?? 'no node start settings set', results: rows, modules })}`);
}

await main();
