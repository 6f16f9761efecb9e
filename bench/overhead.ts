/**
 * bench/overhead: N small schema units (CREATE TABLE, CREATE INDEX, COMMENT ON TABLE; for
 * tenantify also one verify section) applied to a fresh database by
 *   tenantify        node bin/tenantify apply (ledger, per-unit transaction, verify); its split
 *                    cache is warm after the first round, as for a DBA running the same plan again
 *   tenantify (cold) the same with TENANTIFY_CACHE_DIR=none: every file parsed
 *   dbmate           the Go binary shipped in @dbmate/<platform> (schema_migrations, tx per migration)
 *   node-pg-migrate  its CLI, defaults (pgmigrations table, ONE transaction for the whole run)
 *   node-pg-migrate/tx  the same with --no-single-transaction (a transaction per migration, like the others)
 *   psql -1 -f       the concatenated SQL in one transaction: the floor, no ledger
 * Runs alternate (A B C D E, A B C D E, ...), each on its own fresh database; medians.
 *
 *   npx tsx bench/overhead.ts [--units 200] [--rounds 5] [--no-build] [--tools tenantify,dbmate,...] [--keep]
 *                             [--variant LABEL=/path/to/bin/tenantify]... [--tenantify-args "--no-snapshot"] [--keep-node-env]
 * --variant adds another tenantify build to the rotation (e.g. a patched copy), to measure a
 * change against the current one on the same server, alternated.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { ensurePeers } from './peers.js';
import { startThrowawayPostgres } from '../src/db/throwaway.js';
import { generatePlans, type Plans } from './plans.js';
import {
  build,
  contenderEnv,
  expectSuccess,
  fmt,
  machine,
  median,
  nodeEnvNote,
  serverChildCpuMs,
  table,
  timed,
  writeResult,
  type Timed,
} from './lib.js';

interface Args {
  units: number;
  rounds: number;
  build: boolean;
  tools: string[] | undefined;
  keep: boolean;
  variants: { label: string; bin: string }[];
  tenantifyArgs: string[];
  keepNodeEnv: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    units: 200,
    rounds: 5,
    build: true,
    tools: undefined,
    keep: false,
    variants: [],
    tenantifyArgs: [],
    keepNodeEnv: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--units') args.units = Number(argv[++i]);
    else if (a === '--rounds') args.rounds = Number(argv[++i]);
    else if (a === '--no-build') args.build = false;
    else if (a === '--tools') args.tools = String(argv[++i]).split(',');
    else if (a === '--keep') args.keep = true;
    else if (a === '--keep-node-env') args.keepNodeEnv = true;
    else if (a === '--variant') {
      const [label, bin] = String(argv[++i]).split('=');
      if (!label || !bin) throw new Error('--variant LABEL=/path/to/bin/tenantify');
      args.variants.push({ label, bin });
    } else if (a === '--tenantify-args') args.tenantifyArgs = String(argv[++i]).split(' ').filter(Boolean);
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

interface Tool {
  name: string;
  what: string;
  run(url: string, plans: Plans): Promise<Timed>;
  /** Rows in the tool's own ledger once done (undefined: it keeps none). */
  ledgerCount(client: pg.Client): Promise<number | undefined>;
}

let keepNodeEnv = false;

const childEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env = contenderEnv(keepNodeEnv, { NO_COLOR: '1' });
  for (const key of Object.keys(env)) if (key.startsWith('PG') || key === 'DATABASE_URL') delete env[key];
  return { ...env, ...extra };
};

const count = async (client: pg.Client, query: string): Promise<number> =>
  Number((await client.query<{ n: string }>(query)).rows[0]?.n ?? -1);

function tenantifyTool(name: string, bin: string, extra: string[], env: Record<string, string> = {}): Tool {
  const settings = Object.entries(env)
    .map(([k, v]) => `${k}=${v} `)
    .join('');
  return {
    name,
    what: `${settings}node ${bin} apply -d URL --dir DIR${extra.length ? ` ${extra.join(' ')}` : ''}`,
    run: (url, plans) =>
      timed(process.execPath, [bin, 'apply', '-d', url, '--dir', plans.tenantify, '--no-color', ...extra], { env: childEnv(env) }),
    ledgerCount: (c) => count(c, "SELECT count(*) AS n FROM tenantify.units WHERE status = 'applied' AND verify_results IS NOT NULL"),
  };
}

const peers: Tool[] = [
  {
    name: 'dbmate',
    what: 'dbmate --url URL?sslmode=disable --migrations-dir DIR --no-dump-schema migrate (Go binary)',
    run: (url, plans) =>
      timed(
        ensurePeers().dbmateBinary,
        ['--url', `${url}?sslmode=disable`, '--migrations-dir', plans.dbmate, '--no-dump-schema', 'migrate'],
        { env: childEnv() },
      ),
    ledgerCount: (c) => count(c, 'SELECT count(*) AS n FROM schema_migrations'),
  },
  {
    name: 'node-pg-migrate',
    what: 'node node_modules/node-pg-migrate/bin/node-pg-migrate.js up -m DIR (defaults: one transaction for all)',
    run: (url, plans) =>
      timed(process.execPath, [ensurePeers().nodePgMigrateBin, 'up', '-m', plans.pgm], { env: childEnv({ DATABASE_URL: url }) }),
    ledgerCount: (c) => count(c, 'SELECT count(*) AS n FROM pgmigrations'),
  },
  {
    name: 'node-pg-migrate/tx',
    what: 'the same with --no-single-transaction (one transaction per migration)',
    run: (url, plans) =>
      timed(process.execPath, [ensurePeers().nodePgMigrateBin, 'up', '-m', plans.pgm, '--no-single-transaction'], {
        env: childEnv({ DATABASE_URL: url }),
      }),
    ledgerCount: (c) => count(c, 'SELECT count(*) AS n FROM pgmigrations'),
  },
  {
    name: 'psql -1 -f',
    what: 'psql -X -q -v ON_ERROR_STOP=1 -1 -f all.sql (floor: no ledger, one transaction)',
    run: (url, plans) => timed('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-1', '-d', url, '-f', plans.psqlFile], { env: childEnv() }),
    ledgerCount: async () => undefined,
  },
];

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  keepNodeEnv = args.keepNodeEnv;
  const tools = [
    tenantifyTool('tenantify', 'bin/tenantify', args.tenantifyArgs),
    // Without the split cache: every file parsed, as on the first run of a plan.
    tenantifyTool('tenantify (cold)', 'bin/tenantify', args.tenantifyArgs, { TENANTIFY_CACHE_DIR: 'none' }),
    ...args.variants.map((v) => tenantifyTool(v.label, v.bin, args.tenantifyArgs)),
    ...peers,
  ];
  const chosen = args.tools ? tools.filter((t) => args.tools?.includes(t.name) || args.variants.some((v) => v.label === t.name)) : tools;
  if (chosen.length === 0) throw new Error(`no tool selected; known: ${tools.map((t) => t.name).join(', ')}`);
  if (args.build) {
    process.stderr.write('building tenantify (npm run build)...\n');
    build();
  }
  const plans = generatePlans(args.units);
  process.stderr.write(`plans: ${plans.root} (${args.units} units each)\n`);
  const server = await startThrowawayPostgres({ prefer: 'local', log: (l) => process.stderr.write(`${l}\n`) });
  const admin = new pg.Client({ connectionString: server.url });
  const samples = new Map<string, number[]>(chosen.map((t) => [t.name, []]));
  const clientCpu = new Map<string, number[]>(chosen.map((t) => [t.name, []]));
  const serverCpu = new Map<string, number[]>(chosen.map((t) => [t.name, []]));
  const dataDirectory = server.directory ? join(server.directory, 'data') : undefined;
  const base = new URL(server.url);
  let serverVersion: string | undefined;
  try {
    await admin.connect();
    serverVersion = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v;
    for (let round = 1; round <= args.rounds; round++) {
      for (const tool of chosen) {
        const db = `bench_${tool.name.replace(/[^a-z0-9]/g, '_')}_${round}`;
        await admin.query(`DROP DATABASE IF EXISTS ${db}`);
        await admin.query(`CREATE DATABASE ${db}`);
        const url = new URL(base);
        url.pathname = `/${db}`;
        const cpuBefore = dataDirectory ? serverChildCpuMs(dataDirectory) : undefined;
        const result = await tool.run(url.toString(), plans);
        expectSuccess(`${tool.name} (round ${round})`, result);
        // The run's backends are gone (and reaped) before the server's CPU is read again.
        for (let wait = 0; wait < 100; wait++) {
          const left = await admin.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1', [db]);
          if (Number(left.rows[0]?.n) === 0) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        // A backend leaves pg_stat_activity a moment before the postmaster reaps it: wait until
        // the postmaster's children CPU stops moving.
        let cpuAfter = dataDirectory ? serverChildCpuMs(dataDirectory) : undefined;
        for (let settle = 0; dataDirectory && settle < 40; settle++) {
          await new Promise((r) => setTimeout(r, 25));
          const again = serverChildCpuMs(dataDirectory);
          if (again === cpuAfter && settle >= 2) break;
          cpuAfter = again;
        }
        if (cpuBefore !== undefined && cpuAfter !== undefined) serverCpu.get(tool.name)?.push(cpuAfter - cpuBefore);
        if (result.cpuMs !== undefined) clientCpu.get(tool.name)?.push(result.cpuMs);
        // The work was really done: every table, and the tool's ledger says so.
        const check = new pg.Client({ connectionString: url.toString() });
        await check.connect();
        try {
          const tablesMade = await count(check, "SELECT count(*) AS n FROM pg_class WHERE relkind = 'r' AND relname LIKE 'bench_t%'");
          const commented = await count(
            check,
            "SELECT count(*) AS n FROM pg_class c JOIN pg_description d ON d.objoid = c.oid AND d.objsubid = 0 WHERE c.relname LIKE 'bench_t%' AND c.relkind = 'r'",
          );
          const ledger = await tool.ledgerCount(check);
          if (tablesMade !== args.units || commented !== args.units || (ledger !== undefined && ledger !== args.units)) {
            throw new Error(
              `${tool.name} round ${round}: ${tablesMade} tables, ${commented} comments, ledger ${ledger}; expected ${args.units}`,
            );
          }
        } finally {
          await check.end();
        }
        if (!args.keep) await admin.query(`DROP DATABASE ${db}`);
        samples.get(tool.name)?.push(result.ms);
        const cpu =
          result.cpuMs === undefined
            ? ''
            : `  (client CPU ${fmt(result.cpuMs, 0)} ms, server CPU ${fmt((cpuAfter ?? 0) - (cpuBefore ?? 0), 0)} ms)`;
        process.stderr.write(`round ${round} ${tool.name.padEnd(18)} ${fmt(result.ms, 0).padStart(7)} ms${cpu}\n`);
      }
    }
  } finally {
    await admin.end().catch(() => {});
    await server.close();
    if (!args.keep) rmSync(plans.root, { recursive: true, force: true });
  }

  // Ratios are to tenantify, or to the first tool run when tenantify itself was left out.
  const reference = chosen.some((t) => t.name === 'tenantify') ? 'tenantify' : (chosen[0] as Tool).name;
  const tenantifyMedian = median(samples.get(reference) ?? []);
  const referenceSamples = samples.get(reference) ?? [];
  const rows = chosen.map((t) => {
    const s = samples.get(t.name) ?? [];
    const m = median(s);
    // Each round's two runs are minutes apart at most: their ratio is blind to the drift of the
    // machine's speed across the rounds, which moves the medians of a run by up to 20 % here.
    const paired = median(s.map((v, round) => v / (referenceSamples[round] as number)));
    return {
      tool: t.name,
      command: t.what,
      samplesMs: s.map((v) => Math.round(v * 10) / 10),
      medianMs: Math.round(m * 10) / 10,
      minMs: Math.round(Math.min(...s) * 10) / 10,
      maxMs: Math.round(Math.max(...s) * 10) / 10,
      perUnitMs: Math.round((m / args.units) * 1000) / 1000,
      clientCpuMs: median(clientCpu.get(t.name) ?? []),
      serverCpuMs: median(serverCpu.get(t.name) ?? []),
      clientCpuSamplesMs: clientCpu.get(t.name) ?? [],
      serverCpuSamplesMs: serverCpu.get(t.name) ?? [],
      ratioToTenantify: Number.isNaN(tenantifyMedian) ? null : Math.round((m / tenantifyMedian) * 100) / 100,
      pairedRatioToTenantify: Number.isNaN(paired) ? null : Math.round(paired * 100) / 100,
      roundsSlowerThanTenantify: s.filter((v, round) => v > (referenceSamples[round] as number)).length,
    };
  });
  console.log(
    `\nbench/overhead: ${args.units} units x ${args.rounds} rounds, PostgreSQL ${serverVersion} (local, fsync=off), ${process.version}`,
  );
  const envNote = nodeEnvNote(args.keepNodeEnv);
  if (envNote) console.log(`environment: ${envNote}`);
  console.log(
    `ratio = tool median / ${reference} median; paired = median over the rounds of the tool's time / ${reference}'s in the same round;`,
  );
  console.log(`slower = rounds in which the tool took longer than ${reference} (above 1 and many: slower than ${reference})\n`);
  console.log(
    table(
      ['tool', 'median ms', 'min ms', 'max ms', 'ms/unit', 'ratio', 'paired', 'slower', 'client CPU ms', 'server CPU ms'],
      rows.map((r) => [
        r.tool,
        fmt(r.medianMs),
        fmt(r.minMs),
        fmt(r.maxMs),
        fmt(r.perUnitMs, 2),
        r.ratioToTenantify === null ? '-' : `${r.ratioToTenantify.toFixed(2)}x`,
        r.pairedRatioToTenantify === null ? '-' : `${r.pairedRatioToTenantify.toFixed(2)}x`,
        `${r.roundsSlowerThanTenantify}/${args.rounds}`,
        Number.isNaN(r.clientCpuMs) ? '-' : fmt(r.clientCpuMs, 0),
        Number.isNaN(r.serverCpuMs) ? '-' : fmt(r.serverCpuMs, 0),
      ]),
    ),
  );
  const file = writeResult('overhead.json', {
    bench: 'overhead',
    at: new Date().toISOString(),
    units: args.units,
    rounds: args.rounds,
    postgres: serverVersion,
    machine: machine(),
    statementsPerUnit: ['CREATE TABLE', 'CREATE INDEX', 'COMMENT ON TABLE'],
    tenantifyExtra: 'one verify section per unit (SELECT id FROM <table>: must be empty)',
    ratioTo: reference,
    environment: envNote ?? 'no node start settings set',
    results: rows,
  });
  console.log('\nmedian, min and max: wall time of the whole command, spawn to exit. CPU columns (medians): user+sys of the');
  console.log("tool's process (/usr/bin/time) and of the server backends it caused (postmaster cutime+cstime): the cost that");
  console.log('does not depend on how busy the machine is.');
  console.log(`\nresults: ${file}`);
}

await main();
