/**
 * bench/fleet: one plan applied to a fleet of 8 databases (`apply --targets`), with
 * `--parallel 4` against `--parallel 1` (one target at a time), in the same run, on the same
 * server. Goal: the parallel fleet at most 0.6x the serial one's wall time.
 *
 * Each target is a fresh copy (CREATE DATABASE ... TEMPLATE) of a legacy schema: accounts,
 * and projects (--rows a target) that name their account. The plan: an organizations table
 * filled from accounts, a projects.organization_id column, a batched backfill of it (with a
 * verify query), and the foreign key (NOT VALID, then VALIDATE). Snapshots are off
 * (--snapshots takes them). Both contenders give each target one backfill worker: --parallel
 * is a connection budget (4 targets at once, 1 connection each; or 1 target with 1).
 * Rounds alternate which contender goes first; medians.
 *
 *   npx tsx bench/fleet.ts [--targets 8] [--rows 20000] [--rounds 3] [--parallel 4] [--snapshots] [--no-build]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startThrowawayPostgres } from '../src/db/throwaway.js';
import {
  build,
  expectSuccess,
  fmt,
  machine,
  median,
  repoRoot,
  runStatements as query,
  table,
  timed,
  withDatabase,
  writeResult,
} from './lib.js';

interface Args {
  targets: number;
  rows: number;
  rounds: number;
  parallel: number;
  snapshots: boolean;
  build: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { targets: 8, rows: 20_000, rounds: 3, parallel: 4, snapshots: false, build: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): number => Number(argv[++i]);
    if (a === '--targets') args.targets = next();
    else if (a === '--rows') args.rows = next();
    else if (a === '--rounds') args.rounds = next();
    else if (a === '--parallel') args.parallel = next();
    else if (a === '--snapshots') args.snapshots = true;
    else if (a === '--no-build') args.build = false;
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

const plan: Record<string, string> = {
  'migrations/0001_organizations.sql': `CREATE TABLE organizations (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO organizations SELECT id, name FROM accounts;
`,
  'migrations/0002_projects_organization.sql': 'ALTER TABLE projects ADD COLUMN organization_id int;\n',
  'backfills/0003_projects_organization.sql': `-- tenantify:batch projects key=id size=5000
UPDATE projects SET organization_id = account_id WHERE id > $1 AND id <= $2;
-- tenantify:verify every project has an organization
SELECT id FROM projects WHERE organization_id IS NULL;
`,
  'migrations/0004_projects_organization_fk.sql': `ALTER TABLE projects ADD CONSTRAINT projects_organization_fk FOREIGN KEY (organization_id) REFERENCES organizations (id) NOT VALID;
ALTER TABLE projects VALIDATE CONSTRAINT projects_organization_fk;
`,
};

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.build) build();
  const dir = mkdtempSync(join(tmpdir(), 'tenantify-bench-fleet-'));
  for (const [name, text] of Object.entries(plan)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  const server = await startThrowawayPostgres({ log: (line) => process.stderr.write(`${line}\n`) });
  try {
    await query(server.url, ['CREATE DATABASE fleet_template']);
    const template = withDatabase(server.url, 'fleet_template');
    await query(template, [
      'CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL)',
      "INSERT INTO accounts SELECT g, 'account ' || g FROM generate_series(1, 1000) g",
      'CREATE TABLE projects (id int PRIMARY KEY, account_id int, title text)',
      `INSERT INTO projects SELECT g, g % 1000 + 1, 'project ' || g FROM generate_series(1, ${args.rows}) g`,
      'VACUUM ANALYZE',
    ]);
    const contenders = [
      { label: `--parallel ${args.parallel}`, parallel: args.parallel },
      { label: '--parallel 1', parallel: 1 },
    ];
    const times = new Map<string, number[]>(contenders.map((c) => [c.label, []]));
    /** The CLI process's own CPU (user + system): what one node process spends for the whole fleet. */
    const cpu = new Map<string, number[]>(contenders.map((c) => [c.label, []]));
    for (let round = 0; round < args.rounds; round++) {
      const order = round % 2 === 0 ? contenders : [...contenders].reverse();
      for (const contender of order) {
        const names = Array.from({ length: args.targets }, (_, i) => `fleet_r${round}_p${contender.parallel}_${i + 1}`);
        await query(
          server.url,
          names.map((n) => `CREATE DATABASE ${n} TEMPLATE fleet_template`),
        );
        await query(server.url, ['CHECKPOINT']);
        const file = join(dir, 'targets.txt');
        writeFileSync(file, names.map((n) => `${n} ${withDatabase(server.url, n)}`).join('\n'));
        const run = await timed(process.execPath, [
          join(repoRoot, 'bin/tenantify'),
          'apply',
          '--targets',
          file,
          '--dir',
          dir,
          '--parallel',
          String(contender.parallel),
          ...(args.snapshots ? [] : ['--no-snapshot']),
          '--json',
        ]);
        expectSuccess(contender.label, run);
        times.get(contender.label)?.push(run.ms);
        if (run.cpuMs !== undefined) cpu.get(contender.label)?.push(run.cpuMs);
        process.stderr.write(
          `round ${round + 1}: ${contender.label} ${fmt(run.ms)} ms (client CPU ${run.cpuMs === undefined ? '?' : fmt(run.cpuMs)} ms)\n`,
        );
        await query(
          server.url,
          names.map((n) => `DROP DATABASE ${n}`),
        );
      }
    }
    const serial = median(times.get('--parallel 1') ?? []);
    const rows = contenders.map((c) => {
      const ms = median(times.get(c.label) ?? []);
      const clientCpu = cpu.get(c.label) ?? [];
      return [
        c.label,
        fmt(ms),
        (times.get(c.label) ?? []).map((t) => fmt(t, 0)).join(' '),
        (ms / serial).toFixed(2),
        clientCpu.length > 0 ? fmt(median(clientCpu)) : '?',
      ];
    });
    console.log(
      `apply --targets: ${args.targets} targets of ${args.rows.toLocaleString('en-US')} projects each, ${args.rounds} rounds${args.snapshots ? ', with snapshots' : ', --no-snapshot'}`,
    );
    console.log(table(['contender', 'median ms', 'rounds ms', 'x serial', 'client CPU ms'], rows));
    const ratio = median(times.get(`--parallel ${args.parallel}`) ?? []) / serial;
    console.log(`--parallel ${args.parallel} takes ${ratio.toFixed(2)}x the serial time (goal: at most 0.6x)`);
    console.log(
      `results: ${writeResult('fleet', { args, machine: machine(), times: Object.fromEntries(times), clientCpu: Object.fromEntries(cpu), ratio })}`,
    );
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
