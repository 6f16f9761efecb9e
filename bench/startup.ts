/**
 * bench/startup: `tenantify --help` cold start against `node -e 0` (goal: within 1.5x),
 * plus what it costs to load commander alone, what `--help` loads, the whole CLI loaded
 * (`apply --help`), a `plan` of the reference plan (warm split cache, no database), with
 * the caches off (`TENANTIFY_CACHE_DIR=none`) beside, and a `plan` of one TypeScript unit that
 * imports tenantify (`ts-unit`: what loading its `import ... from 'tenantify'` costs). Runs alternate, the order rotating
 * each round (A B C..., B C ... A, ...); medians, and each case's ratio to `node -e 0` of the
 * same round (paired: blind to the machine's drift from round to round).
 *
 *   npx tsx bench/startup.ts [--runs 30] [--no-build] [--variant LABEL=/path/to/bin/tenantify]... [--keep-node-env]
 *
 * A variant launcher (another build's bin/, or a launcher beside bin/tenantify that runs the
 * same bundle another way) runs every tenantify case too, and is compared with
 * bin/tenantify round by round: the median of its time over bin/tenantify's, and the rounds
 * it was faster.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  build,
  contenderEnv,
  expectSuccess,
  fmt,
  machine,
  median,
  parseVariant,
  nodeEnvNote,
  repoRoot,
  table,
  timed,
  writeResult,
  type Timed,
} from './lib.js';

interface Case {
  name: string;
  command: string[];
  env?: Record<string, string>;
  /** The case of bin/tenantify this variant's case is compared with. */
  pairedWith?: string;
}

function parseArgs(argv: string[]): { runs: number; build: boolean; keepNodeEnv: boolean; variants: { label: string; bin: string }[] } {
  const args = { runs: 30, build: true, keepNodeEnv: false, variants: [] as { label: string; bin: string }[] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--runs') args.runs = Number(argv[++i]);
    else if (a === '--no-build') args.build = false;
    else if (a === '--keep-node-env') args.keepNodeEnv = true;
    else if (a === '--variant') args.variants.push(parseVariant(argv[++i]));
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

const marker = '__bench_time__';

/**
 * A run timed by bash's `time`: the wall time from fork to exit, and the CPU time to the
 * millisecond (getrusage), where /usr/bin/time (lib.ts's timed) rounds to 10 ms, too coarse
 * for commands of 100 ms. Without bash, lib.ts's timed.
 */
function timedFine(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Timed> {
  if (!existsSync('/bin/bash')) return timed(command, args, { env });
  return new Promise((resolve, reject) => {
    const script = `TIMEFORMAT='${marker} %3R %3U %3S'; time "$@"`;
    const child = spawn('/bin/bash', ['-c', script, 'bash', command, ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const match = new RegExp(`${marker} ([\\d.]+) ([\\d.]+) ([\\d.]+)\\s*$`).exec(stderr);
      if (!match) return resolve({ ms: Number.NaN, code: code === 0 ? 1 : code, stdout, stderr });
      resolve({
        ms: Number(match[1]) * 1000,
        code,
        stdout,
        stderr: stderr.slice(0, match.index),
        cpuMs: (Number(match[2]) + Number(match[3])) * 1000,
      });
    });
  });
}

/**
 * A plan of one TypeScript unit that imports tenantify, as a DBA's would: the package is
 * installed beside it (node_modules/tenantify, this checkout), so that a build that resolves
 * the import the usual way (a variant) finds it too.
 */
function tsUnitPlan(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tenantify-startup-ts-'));
  mkdirSync(join(dir, 'migrations'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(repoRoot, join(dir, 'node_modules', 'tenantify'));
  writeFileSync(
    join(dir, 'migrations', '0001_ts_unit.ts'),
    "import { defineUnit, sql } from 'tenantify';\n\nexport default defineUnit({\n  async up(db) {\n    await sql`CREATE TABLE t (id int)`.execute(db);\n  },\n});\n",
  );
  return dir;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.build) {
    process.stderr.write('building tenantify (npm run build)...\n');
    build();
  }
  const node = process.execPath;
  // The contenders' caches: the bench's own, warmed by the warm-up runs, so the user's is left alone.
  const cacheDir = mkdtempSync(join(tmpdir(), 'tenantify-startup-cache-'));
  const tsPlan = tsUnitPlan();
  const commands: { name: string; args: string[] }[] = [
    { name: '--help', args: ['--help'] },
    // The whole CLI loaded: commander answers a command's help.
    { name: 'apply --help', args: ['apply', '--help'] },
    // The reference plan (15 units), no database: the splits and lint facts from the split cache.
    { name: 'plan (reference plan)', args: ['plan', '--dir', repoRoot] },
    { name: 'plan (ts-unit)', args: ['plan', '--dir', tsPlan] },
  ];
  const launchers = [{ label: 'tenantify', bin: 'bin/tenantify' }, ...args.variants];
  const cases: Case[] = [
    { name: 'node -e 0', command: [node, '-e', '0'] },
    { name: 'node -e "import(\'commander\')"', command: [node, '--input-type=module', '-e', "await import('commander')"] },
    { name: 'tenantify --version', command: [node, 'bin/tenantify', '--version'] },
    ...launchers.flatMap((l) =>
      commands.map((c) => ({
        name: `${l.label} ${c.name}`,
        command: [node, l.bin, ...c.args],
        pairedWith: l.bin === 'bin/tenantify' ? undefined : `tenantify ${c.name}`,
      })),
    ),
    // Compiled from source, every file parsed: a plan's first run.
    {
      name: 'tenantify apply --help (caches off)',
      command: [node, 'bin/tenantify', 'apply', '--help'],
      env: { TENANTIFY_CACHE_DIR: 'none' },
    },
    {
      name: 'tenantify plan (reference plan, caches off)',
      command: [node, 'bin/tenantify', 'plan', '--dir', repoRoot],
      env: { TENANTIFY_CACHE_DIR: 'none' },
    },
  ];
  const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  const cpu = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  const runCase = (c: Case) =>
    timedFine(c.command[0] as string, c.command.slice(1), contenderEnv(args.keepNodeEnv, { TENANTIFY_CACHE_DIR: cacheDir, ...c.env }));
  // Two warm-ups of each (file cache, then the caches a first run writes), not counted.
  for (let i = 0; i < 2; i++) for (const c of cases) expectSuccess(c.name, await runCase(c));
  for (let run = 0; run < args.runs; run++) {
    for (let i = 0; i < cases.length; i++) {
      const c = cases[(run + i) % cases.length] as Case;
      const result = await runCase(c);
      expectSuccess(c.name, result);
      samples.get(c.name)?.push(result.ms);
      if (result.cpuMs !== undefined) cpu.get(c.name)?.push(result.cpuMs);
    }
  }
  rmSync(cacheDir, { recursive: true, force: true });
  rmSync(tsPlan, { recursive: true, force: true });

  // What `--help` loads: every module file, by package.
  const traceDir = mkdtempSync(join(tmpdir(), 'tenantify-modules-'));
  const modules: Record<string, unknown> = {};
  for (const c of cases.filter((x) => x.name.endsWith(' --help') && x.command.length === 3)) {
    const file = join(traceDir, 'modules.json');
    const bin = c.command[1] as string;
    const result = await timed(node, ['--import', join(repoRoot, 'bench', 'module-trace.mjs'), bin, '--help'], {
      env: { ...process.env, BENCH_MODULES: file },
    });
    expectSuccess(`${c.name} (module trace)`, result);
    const trace = JSON.parse(readFileSync(file, 'utf8')) as { total: number; byPackage: Record<string, number> };
    modules[c.name] = { total: trace.total, byPackage: trace.byPackage };
  }
  rmSync(traceDir, { recursive: true, force: true });

  const round = (v: number, digits: number): number => Math.round(v * 10 ** digits) / 10 ** digits;
  const ratios = (s: number[], base: number[]): number[] => s.map((v, i) => v / (base[i] as number));
  const wall = (name: string): number[] => samples.get(name) ?? [];
  const cpuOf = (name: string): number[] => cpu.get(name) ?? [];
  const rows = cases.map((c) => {
    const s = wall(c.name);
    const paired = c.pairedWith ? ratios(s, wall(c.pairedWith)) : undefined;
    const pairedCpu = c.pairedWith ? ratios(cpuOf(c.name), cpuOf(c.pairedWith)) : undefined;
    return {
      case: c.name,
      medianMs: round(median(s), 1),
      minMs: round(Math.min(...s), 1),
      maxMs: round(Math.max(...s), 1),
      overNodeMs: round(median(s) - median(wall('node -e 0')), 1),
      /** The median over the rounds of this case's time over `node -e 0`'s in the same round. */
      ratioToNode: round(median(ratios(s, wall('node -e 0'))), 2),
      cpuMs: round(median(cpuOf(c.name)), 0),
      cpuRatioToNode: round(median(ratios(cpuOf(c.name), cpuOf('node -e 0'))), 2),
      ...(paired && pairedCpu && c.pairedWith
        ? {
            pairedWith: c.pairedWith,
            pairedRatio: round(median(paired), 3),
            fasterRounds: paired.filter((r) => r < 1).length,
            pairedCpuRatio: round(median(pairedCpu), 3),
          }
        : {}),
      samplesMs: s.map((v) => round(v, 1)),
      cpuSamplesMs: cpuOf(c.name),
    };
  });
  console.log(`\nbench/startup: ${args.runs} alternated runs each, ${process.version} (goal: tenantify --help within 1.5x of node -e 0)`);
  const envNote = nodeEnvNote(args.keepNodeEnv);
  console.log(envNote ? `environment: ${envNote}\n` : '');
  console.log(
    table(
      ['case', 'median ms', 'min ms', 'max ms', 'ratio to node', 'CPU ms', 'CPU ratio', 'vs tenantify: wall, CPU'],
      rows.map((r) => [
        r.case,
        fmt(r.medianMs),
        fmt(r.minMs),
        fmt(r.maxMs),
        `${r.ratioToNode.toFixed(2)}x`,
        Number.isNaN(r.cpuMs) ? '-' : fmt(r.cpuMs, 0),
        Number.isNaN(r.cpuRatioToNode) ? '-' : `${r.cpuRatioToNode.toFixed(2)}x`,
        r.pairedRatio === undefined
          ? ''
          : `${r.pairedRatio.toFixed(3)}x (faster in ${r.fasterRounds}/${args.runs}), ${r.pairedCpuRatio?.toFixed(3)}x`,
      ]),
    ),
  );
  console.log('\n(ratios: medians of the per-round ratios, to node -e 0 or to the same command of bin/tenantify)');
  console.log('\nmodules loaded by --help (files, by package):');
  for (const [name, m] of Object.entries(modules)) console.log(`  ${name}: ${JSON.stringify(m)}`);
  const help = rows.find((r) => r.case === 'tenantify --help');
  if (help)
    console.log(
      `\ngoal ${help.ratioToNode <= 1.5 ? 'met' : 'NOT met'}: tenantify --help is ${help.ratioToNode.toFixed(2)}x node -e 0 (median of paired ratios)`,
    );
  console.log(
    `\nresults: ${writeResult('startup.json', { bench: 'startup', at: new Date().toISOString(), runs: args.runs, machine: machine(), environment: envNote ?? 'no node start settings set', results: rows, modules })}`,
  );
}

await main();
