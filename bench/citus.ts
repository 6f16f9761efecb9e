/**
 * bench/citus: one PostgreSQL against a Citus cluster of a coordinator and two workers on
 * this machine, same data, same process, side by side.
 *
 * Data: restaurant-platform's legacy.sql grown by its scale.sql (`--scale` customers,
 * scale/20 restaurants, 3 x scale reservations), upgraded by the plans that
 * `tenantify tenancy scaffold` writes for it (from the unscaled legacy.sql and the fixture's
 * scaffold.config.json), applied with `node bin/tenantify apply --no-snapshot`: on the
 * cluster the `--citus` plan (the tenant key everywhere, then the Citus placement: keys with
 * organization_id first, users a reference table, every tenant table distributed by
 * organization_id and colocated with organizations); on one node the `--composite` plan
 * (the `--citus` plan's units read Citus's catalog). One difference matters to a backfill:
 * on the cluster reservations' primary key is (organization_id, id) and no index has id
 * alone; on one node it stays (id).
 *
 * - a tenant-scoped read (`WHERE organization_id = $1`, a count and a sum over one tenant's
 *   reservations), repeated over random tenants: median and p95 latency, and how many
 *   tasks (shards) the cluster's plan touches (the figure to watch: 1);
 * - a batched backfill, a real tenantify unit: `-- tenantify:batch public.reservations
 *   key=<--key> size=<--batch>` setting a new column from total_amount, applied by
 *   `node bin/tenantify apply --parallel 1` (one worker, so the batches' times add up to the
 *   unit's; `--parallel 0`: apply's default of 2 to 4; the batch size adapts as usual). Each
 *   batch's latency is read from what tenantify records: the ledger moves the unit's progress
 *   (tenantify.units.progress) inside each batch's transaction, and a trigger the bench puts
 *   on that table records, at that moment, clock_timestamp() - transaction_timestamp(): how
 *   long the batch's transaction had run (its UPDATE and the ledger's; the commit after it
 *   is not counted). The total is the unit's duration_ms in the ledger.
 *
 * On one 2-core machine the cluster is not expected to be faster (three servers share the
 * cores, and each distributed statement pays the coordinator's planning and a hop).
 *
 *   npx tsx bench/citus.ts [--scale 50000] [--reads 300] [--key id|organization_id] [--batch 5000]
 *       [--parallel 1] [--workers 2] [--shards 32] [--no-build]
 */
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { findCitus, startThrowawayCitus, startThrowawayPostgres } from '../src/db/throwaway.js';
import {
  build,
  contenderEnv,
  expectSuccess,
  fmt,
  loadScaledFixture,
  machine,
  median,
  repoRoot,
  runStatements,
  table,
  timed,
  writeResult,
} from './lib.js';

interface Args {
  scale: number;
  reads: number;
  key: string;
  batch: number;
  /** apply --parallel: 1 by default, so each batch's time adds up to the unit's; 0 leaves apply's default (2 to 4 workers). */
  parallel: number;
  workers: number;
  shards: number;
  build: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { scale: 50_000, reads: 300, key: 'id', batch: 5000, parallel: 1, workers: 2, shards: 32, build: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--scale') args.scale = Number(argv[++i]);
    else if (a === '--reads') args.reads = Number(argv[++i]);
    else if (a === '--key') args.key = String(argv[++i]);
    else if (a === '--batch') args.batch = Number(argv[++i]);
    else if (a === '--parallel') args.parallel = Number(argv[++i]);
    else if (a === '--workers') args.workers = Number(argv[++i]);
    else if (a === '--shards') args.shards = Number(argv[++i]);
    else if (a === '--no-build') args.build = false;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!['id', 'organization_id'].includes(args.key)) throw new Error('--key is id or organization_id');
  return args;
}

const fixture = 'restaurant-platform';

/** The scaffolded plan for the cluster, and the same without the placing units for one node, each with the bench's two units after it. */
async function writePlans(args: Args, env: NodeJS.ProcessEnv): Promise<{ cluster: string; single: string }> {
  const plan = async (label: string, flag: string): Promise<string> => {
    const dir = mkdtempSync(join(tmpdir(), `bench-citus-${label}-`));
    cpSync(join(repoRoot, 'fixtures', fixture, 'scaffold.config.json'), join(dir, 'tenantify.config.json'));
    const scaffold = await timed(
      process.execPath,
      [
        join(repoRoot, 'bin/tenantify'),
        'tenancy',
        'scaffold',
        flag,
        '--fixture',
        join(repoRoot, 'fixtures', fixture, 'legacy.sql'),
        '--dir',
        dir,
      ],
      { env },
    );
    expectSuccess(`tenancy scaffold ${flag}`, scaffold);
    // The bench's two units, numbered after the plan's last.
    const last = Math.max(...readdirSync(join(dir, 'rollbacks')).map((f) => Number(f.slice(0, 4))));
    const column = `${String(last + 1).padStart(4, '0')}_reservations_total_cents`;
    const backfill = `${String(last + 2).padStart(4, '0')}_backfill_reservations_total_cents`;
    writeFileSync(
      join(dir, 'migrations', `${column}.sql`),
      `-- Adds reservations.total_cents, which the next unit fills.\nALTER TABLE public.reservations ADD COLUMN total_cents bigint;\n`,
    );
    writeFileSync(join(dir, 'rollbacks', `${column}.sql`), 'ALTER TABLE public.reservations DROP COLUMN total_cents;\n');
    writeFileSync(
      join(dir, 'backfills', `${backfill}.sql`),
      `-- Fills reservations.total_cents from total_amount, in keyset batches over ${args.key}.
-- tenantify:snapshot none
-- tenantify:batch public.reservations key=${args.key} size=${args.batch}
UPDATE public.reservations SET total_cents = round(total_amount * 100)::bigint
 WHERE ${args.key} > $1 AND ${args.key} <= $2 AND total_amount IS NOT NULL;

-- tenantify:verify every reservation with an amount has its cents
SELECT id FROM public.reservations WHERE total_amount IS NOT NULL AND total_cents IS NULL LIMIT 5;
`,
    );
    writeFileSync(join(dir, 'rollbacks', `${backfill}.sql`), 'UPDATE public.reservations SET total_cents = NULL;\n');
    return dir;
  };
  return { cluster: await plan('cluster', '--citus'), single: await plan('single', '--composite') };
}

interface Figures {
  loadMs: number;
  upgradeMs: number;
  readMedianMs: number;
  readP95Ms: number;
  tasks: string;
  backfillMs: number;
  batches: number;
  rows: number;
  batchMedianMs: number;
  batchWorstMs: number;
  batchMs: number[];
}

/** A trigger on the ledger's units table: the age of the transaction each time a batch moves a unit's progress. */
const recorder = [
  'CREATE TABLE public.bench_batches (at timestamptz NOT NULL, ms float8 NOT NULL, batches bigint NOT NULL)',
  `CREATE FUNCTION public.bench_batch() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF coalesce((NEW.progress->>'batches')::bigint, 0) > coalesce((OLD.progress->>'batches')::bigint, 0) THEN
       INSERT INTO public.bench_batches VALUES (clock_timestamp(), extract(epoch FROM clock_timestamp() - transaction_timestamp()) * 1000, (NEW.progress->>'batches')::bigint);
     END IF;
     RETURN NEW;
   END $$`,
  'CREATE TRIGGER bench_batch AFTER UPDATE ON tenantify.units FOR EACH ROW EXECUTE FUNCTION public.bench_batch()',
];

async function measure(name: string, url: string, dir: string, args: Args, env: NodeJS.ProcessEnv): Promise<Figures> {
  const log = (text: string): void => void process.stderr.write(`${name}: ${text}\n`);
  const loaded = await loadScaledFixture(url, fixture, args.scale);
  log(`${fixture} at scale ${args.scale}: ${loaded.rows.toLocaleString('en')} rows in ${fmt(loaded.ms / 1000)} s`);
  const stem = (sub: string, suffix: string): string =>
    (readdirSync(join(dir, sub)).find((f) => f.endsWith(suffix)) ?? suffix).replace(/\.sql$/, '');
  const columnUnit = stem('migrations', '_reservations_total_cents.sql');
  const backfillUnit = stem('backfills', '_backfill_reservations_total_cents.sql');
  const apply = (extra: string[]) =>
    timed(process.execPath, [join(repoRoot, 'bin/tenantify'), 'apply', '-d', url, '--dir', dir, '--no-snapshot', '--json', ...extra], {
      env,
    });
  const upgrade = await apply(['--to', columnUnit]);
  expectSuccess(`${name}: apply --to ${columnUnit}`, upgrade);
  log(`upgrade plan applied in ${fmt(upgrade.ms / 1000)} s`);
  await runStatements(url, ['ANALYZE', ...recorder]);

  const [orgs] = await runStatements(url, ['SELECT id::text FROM public.organizations ORDER BY id']);
  const ids = (orgs?.rows ?? []).map((r: { id: string }) => r.id);
  const read = 'SELECT count(*), sum(total_amount) FROM public.reservations WHERE organization_id = $1';
  const [plan] = await runStatements(url, [`EXPLAIN ${read.replace('$1', ids[Math.floor(ids.length / 2)] ?? '1')}`]);
  const planText = (plan?.rows ?? []).map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
  const tasks = /Task Count: (\d+)/.exec(planText)?.[1] ?? 'n/a (one node)';
  const latencies: number[] = [];
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (let i = 0; i < args.reads; i++) {
      const org = ids[(i * 104_729) % ids.length];
      const started = performance.now();
      await client.query(read, [org]);
      latencies.push(performance.now() - started);
    }
  } finally {
    await client.end();
  }
  latencies.sort((a, b) => a - b);

  const backfill = await apply(args.parallel > 0 ? ['--parallel', String(args.parallel)] : []);
  expectSuccess(`${name}: apply ${backfillUnit}`, backfill);
  const [unit, recorded, left] = await runStatements(url, [
    `SELECT duration_ms, progress FROM tenantify.units WHERE id = '${backfillUnit}'`,
    'SELECT ms FROM public.bench_batches ORDER BY at',
    'SELECT count(*)::int AS n FROM public.reservations WHERE total_amount IS NOT NULL AND total_cents IS NULL',
  ]);
  const row = unit?.rows[0] as { duration_ms: number; progress: { batches?: number; rowsDone?: number } } | undefined;
  if (!row) throw new Error(`${name}: ${backfillUnit} is not in the ledger`);
  if ((left?.rows[0] as { n: number }).n !== 0) throw new Error(`${name}: the backfill left rows without total_cents`);
  const batchMs = (recorded?.rows ?? []).map((r: { ms: number }) => r.ms);
  log(`backfill: ${row.progress.rowsDone} rows in ${row.progress.batches} batches, ${fmt(row.duration_ms / 1000, 2)} s`);
  return {
    loadMs: loaded.ms,
    upgradeMs: upgrade.ms,
    readMedianMs: median(latencies),
    readP95Ms: latencies[Math.floor(latencies.length * 0.95)] ?? 0,
    tasks,
    backfillMs: row.duration_ms,
    batches: Number(row.progress.batches ?? 0),
    rows: Number(row.progress.rowsDone ?? 0),
    batchMedianMs: median(batchMs),
    batchWorstMs: Math.max(...batchMs),
    batchMs,
  };
}

const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const citus = findCitus();
  if ('missing' in citus) {
    console.error(`${citus.missing}: run shared/citus/install.sh (as root) first`);
    process.exit(2);
  }
  if (args.build) build();
  const env = contenderEnv(false);
  const plans = await writePlans(args, env);
  const single = await startThrowawayPostgres({ prefer: 'local' });
  const cluster = await startThrowawayCitus({ workers: args.workers, shardCount: args.shards });
  try {
    const one = await measure('one node', single.url, plans.single, args, env);
    const many = await measure('cluster', cluster.url, plans.cluster, args, env);
    const ratio = (a: number, b: number): string => `${fmt(a / b, 2)}x`;
    console.log(
      `${fixture} at scale ${args.scale}: ${one.rows.toLocaleString('en')} reservations backfilled; ${args.reads} tenant reads; ` +
        `batch key=${args.key} size=${args.batch} (adaptive), ${args.parallel > 0 ? args.parallel : 'default'} worker(s); Citus 1 + ${args.workers}, ${args.shards} shards`,
    );
    console.log(
      table(
        ['', 'one PostgreSQL', `Citus 1 + ${args.workers}`, 'cluster / one node'],
        [
          ['tenant read median ms', fmt(one.readMedianMs, 2), fmt(many.readMedianMs, 2), ratio(many.readMedianMs, one.readMedianMs)],
          ['tenant read p95 ms', fmt(one.readP95Ms, 2), fmt(many.readP95Ms, 2), ratio(many.readP95Ms, one.readP95Ms)],
          ['tasks per tenant read', one.tasks, many.tasks, ''],
          ['backfill total ms (ledger)', fmt(one.backfillMs, 0), fmt(many.backfillMs, 0), ratio(many.backfillMs, one.backfillMs)],
          [
            'batches (rows per batch)',
            `${one.batches} (${Math.round(one.rows / one.batches)})`,
            `${many.batches} (${Math.round(many.rows / many.batches)})`,
            '',
          ],
          ['median batch ms', fmt(one.batchMedianMs, 1), fmt(many.batchMedianMs, 1), ratio(many.batchMedianMs, one.batchMedianMs)],
          ['worst batch ms', fmt(one.batchWorstMs, 1), fmt(many.batchWorstMs, 1), ratio(many.batchWorstMs, one.batchWorstMs)],
          ['sum of batch transactions ms', fmt(sum(one.batchMs), 0), fmt(sum(many.batchMs), 0), ratio(sum(many.batchMs), sum(one.batchMs))],
          [
            'rest of the unit ms (key ranges, commits...)',
            fmt(one.backfillMs - sum(one.batchMs), 0),
            fmt(many.backfillMs - sum(many.batchMs), 0),
            ratio(many.backfillMs - sum(many.batchMs), one.backfillMs - sum(one.batchMs)),
          ],
          ['upgrade plan apply s', fmt(one.upgradeMs / 1000, 1), fmt(many.upgradeMs / 1000, 1), ratio(many.upgradeMs, one.upgradeMs)],
        ],
      ),
    );
    console.log(
      `load average: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    const file = writeResult('citus.json', { machine: machine(), loadavg: loadavg(), args, single: one, cluster: many });
    console.log(`written to ${file}`);
  } finally {
    await cluster.close();
    await single.close();
    rmSync(plans.cluster, { recursive: true, force: true });
    rmSync(plans.single, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
