/**
 * bench/small-apply: what one `tenantify apply` of a small plan costs, the kind of run the
 * test suite starts hundreds of times: test/apply.test.ts's plan (a table and a foreign key,
 * a backfill, a batched backfill of 3,002 users, an index built concurrently) on a fresh copy
 * of its legacy database, snapshots on (one pg_dump, of users) unless `--no-snapshot`.
 * Per run: wall time, the CLI's CPU (user + system, with the children it waited for:
 * pg_dump and its probes) and the server's (the backends the run opened, which have exited
 * by then: the postmaster's cutime + cstime). The machine the suite runs on is CPU-bound,
 * so CPU is the figure; wall time also holds the throttle's pauses and the scheduler.
 *
 * With `--variant LABEL=/path/to/bin/tenantify` (another build, e.g. a copy of main's bin/,
 * dist/ and package.json) the runs alternate, the order swapping every round, and each
 * variant is compared with bin/tenantify round by round (median of the per-round ratios).
 *
 *   npx tsx bench/small-apply.ts [--rounds 15] [--no-build] [--no-snapshot] [--variant LABEL=/path/to/bin/tenantify]... [--keep-node-env]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startThrowawayPostgres } from '../src/db/throwaway.js';
import { createScratchDatabase } from '../src/db/scratch-database.js';
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
  serverChildCpuMs,
  sleep,
  table,
  timed,
  withDatabase,
  writeResult,
} from './lib.js';

const legacy = `
  CREATE TABLE users (id serial PRIMARY KEY, email text);
  INSERT INTO users (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 3000) g;
  INSERT INTO users (email) VALUES (NULL), ('user1@example.com');`;

/** test/apply.test.ts's plan. */
const plan: Record<string, string> = {
  'migrations/0001_create_organizations.sql': `-- tenantify:lock-timeout 2s
CREATE TABLE organizations (id bigint PRIMARY KEY, name text NOT NULL);
ALTER TABLE users ADD COLUMN organization_id bigint REFERENCES organizations (id);
-- tenantify:verify the table starts empty
SELECT id FROM organizations;
`,
  'backfills/0002_default_organizations.sql': `INSERT INTO organizations (id, name)
SELECT id, coalesce(email, 'user ' || id) FROM users ON CONFLICT DO NOTHING;
-- tenantify:verify every user has an organization
SELECT u.id FROM users u LEFT JOIN organizations o ON o.id = u.id WHERE o.id IS NULL;
`,
  'backfills/0003_assign_users.sql': `-- tenantify:batch users key=id size=500
UPDATE users SET organization_id = id WHERE id > $1 AND id <= $2 AND organization_id IS NULL;
-- tenantify:verify every user belongs to an organization
SELECT id FROM users WHERE organization_id IS NULL;
`,
  'migrations/0004_index.sql': `-- tenantify:transaction off
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_organization_idx ON users (organization_id);
`,
};

interface Args {
  rounds: number;
  build: boolean;
  noSnapshot: boolean;
  keepNodeEnv: boolean;
  variants: { label: string; bin: string }[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = { rounds: 15, build: true, noSnapshot: false, keepNodeEnv: false, variants: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rounds') args.rounds = Number(argv[++i]);
    else if (a === '--no-build') args.build = false;
    else if (a === '--no-snapshot') args.noSnapshot = true;
    else if (a === '--keep-node-env') args.keepNodeEnv = true;
    else if (a === '--variant') args.variants.push(parseVariant(argv[++i]));
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

interface Sample {
  wallMs: number;
  cliCpuMs: number;
  serverCpuMs: number;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.build) build();
  const contenders = [{ label: 'tenantify', bin: join(repoRoot, 'bin', 'tenantify') }, ...args.variants];
  const dir = mkdtempSync(join(tmpdir(), 'tenantify-small-apply-'));
  for (const [name, text] of Object.entries(plan)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  const server = await startThrowawayPostgres({ prefer: 'local' });
  const admin = new pg.Client({ connectionString: server.url });
  const samples = new Map<string, Sample[]>(contenders.map((c) => [c.label, []]));
  const env = contenderEnv(args.keepNodeEnv, { NO_COLOR: '1' });
  try {
    await admin.connect();
    await createScratchDatabase(admin, 'small_apply_legacy');
    const template = new pg.Client({ connectionString: withDatabase(server.url, 'small_apply_legacy') });
    await template.connect();
    await template.query(legacy);
    await template.query('VACUUM (FREEZE, ANALYZE)');
    await template.end();
    // One run of each first, not counted: the split cache and V8's code cache of each build are warm after it, as in the suite.
    for (let round = 0; round <= args.rounds; round++) {
      const order = round % 2 === 0 ? contenders : [...contenders].reverse();
      for (const contender of order) {
        const database = `small_apply_${round}_${contender.label.replace(/\W/g, '_')}`;
        await createScratchDatabase(admin, database, 'small_apply_legacy');
        const serverBefore = serverChildCpuMs(join(server.directory as string, 'data')) ?? Number.NaN;
        const run = await timed(
          process.execPath,
          [contender.bin, 'apply', '-d', withDatabase(server.url, database), '--dir', dir, ...(args.noSnapshot ? ['--no-snapshot'] : [])],
          { env },
        );
        expectSuccess(`${contender.label} round ${round}`, run);
        // The run's backends exit once its connections close; the postmaster reaps them a moment later.
        await sleep(200);
        const serverCpuMs = (serverChildCpuMs(join(server.directory as string, 'data')) ?? Number.NaN) - serverBefore;
        await admin.query(`DROP DATABASE ${database}`);
        if (round > 0) samples.get(contender.label)?.push({ wallMs: run.ms, cliCpuMs: run.cpuMs ?? Number.NaN, serverCpuMs });
      }
    }
  } finally {
    await admin.end().catch(() => {});
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const total = (s: Sample): number => s.cliCpuMs + s.serverCpuMs;
  const rows = contenders.map(({ label }) => {
    const s = samples.get(label) ?? [];
    return [
      label,
      fmt(median(s.map((x) => x.wallMs)), 0),
      fmt(median(s.map((x) => x.cliCpuMs)), 0),
      fmt(median(s.map((x) => x.serverCpuMs)), 0),
      fmt(median(s.map(total)), 0),
    ];
  });
  const base = samples.get('tenantify') ?? [];
  const ratios = args.variants.map(({ label }) => {
    const s = samples.get(label) ?? [];
    const ratio = (f: (x: Sample) => number): number => median(s.map((x, i) => f(x) / f(base[i] as Sample)));
    return { label, wall: ratio((x) => x.wallMs), cliCpu: ratio((x) => x.cliCpuMs), totalCpu: ratio(total) };
  });
  console.log(
    `apply of test/apply.test.ts's plan${args.noSnapshot ? ' (--no-snapshot)' : ''}, ${args.rounds} rounds, medians in ms (CPU: user + system)`,
  );
  console.log(table(['build', 'wall', 'CLI CPU', 'server CPU', 'CPU in all'], rows));
  for (const r of ratios)
    console.log(
      `${r.label} / tenantify, per round: wall ${r.wall.toFixed(2)}x, CLI CPU ${r.cliCpu.toFixed(2)}x, CPU in all ${r.totalCpu.toFixed(2)}x`,
    );
  const note = nodeEnvNote(args.keepNodeEnv);
  if (note) console.log(note);
  console.log(
    writeResult('small-apply.json', { machine: machine(), args, samples: Object.fromEntries(samples), ratios, loadAverage: loadavg() }),
  );
}

await main();
