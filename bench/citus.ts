/**
 * bench/citus: one PostgreSQL against a Citus cluster of a coordinator and two workers on
 * this machine, same data, same process, side by side:
 *
 * - a tenant-scoped read (`WHERE organization_id = $1`, a count and a sum over the tenant's
 *   rows), repeated over random tenants: median and p95 latency, and how many tasks
 *   (shards) the cluster's plan touches (the figure to watch: 1);
 * - a batched backfill (keyset batches of `--batch` rows over (organization_id, id), each
 *   an UPDATE of its own transaction, the shape of a `tenantify:batch` unit): total time and
 *   the worst batch's latency.
 *
 * On one 2-core machine the cluster is not expected to be faster (three servers share the
 * cores, and each distributed statement pays the coordinator's planning and a hop).
 *
 *   npx tsx bench/citus.ts [--rows 400000] [--tenants 2000] [--reads 300] [--batch 10000] [--workers 2]
 */
import pg from 'pg';
import { findCitus, startThrowawayCitus, startThrowawayPostgres } from '../src/db/throwaway.js';
import { fmt, machine, median, table, writeResult } from './lib.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const at = args.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(args[at + 1]);
};
const rows = flag('rows', 400_000);
const tenants = flag('tenants', 2000);
const reads = flag('reads', 300);
const batch = flag('batch', 10_000);
const workers = flag('workers', 2);

const citus = findCitus();
if ('missing' in citus) {
  console.error(`${citus.missing}: run shared/citus/install.sh (as root) first`);
  process.exit(2);
}

const schema = `
  CREATE TABLE organizations (id bigint PRIMARY KEY, name text NOT NULL);
  CREATE TABLE events (
    organization_id bigint NOT NULL REFERENCES organizations,
    id bigint NOT NULL,
    kind int NOT NULL,
    amount numeric NOT NULL,
    amount_cents bigint,
    PRIMARY KEY (organization_id, id));`;
const distribute = `
  SELECT create_distributed_table('organizations', 'id');
  SELECT create_distributed_table('events', 'organization_id', colocate_with => 'organizations');`;
const load = `
  INSERT INTO organizations SELECT g, 'org ' || g FROM generate_series(1, ${tenants}) g;
  INSERT INTO events (organization_id, id, kind, amount)
    SELECT 1 + (g * 7919) % ${tenants}, g, g % 5, (g % 1000) / 10.0 FROM generate_series(1, ${rows}) g;
  ANALYZE;`;

interface Figures {
  readMedianMs: number;
  readP95Ms: number;
  tasks: string;
  backfillMs: number;
  batches: number;
  worstBatchMs: number;
}

async function measure(url: string, distributed: boolean): Promise<Figures> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(schema);
    if (distributed) await client.query(distribute);
    await client.query(load);
    const plan = (await client.query<{ 'QUERY PLAN': string }>('EXPLAIN SELECT count(*), sum(amount) FROM events WHERE organization_id = 42')).rows.map((r) => r['QUERY PLAN']).join('\n');
    const tasks = /Task Count: (\d+)/.exec(plan)?.[1] ?? 'n/a (one node)';

    const latencies: number[] = [];
    for (let i = 0; i < reads; i++) {
      const org = 1 + ((i * 104_729) % tenants);
      const started = performance.now();
      await client.query('SELECT count(*), sum(amount) FROM events WHERE organization_id = $1', [org]);
      latencies.push(performance.now() - started);
    }
    latencies.sort((a, b) => a - b);

    // Keyset batches over the primary key, each its own transaction (autocommit).
    const started = performance.now();
    let worst = 0;
    let batches = 0;
    let smallest = Infinity;
    let cursor: [string, string] = ['0', '0'];
    for (;;) {
      const t0 = performance.now();
      const last = await client.query<{ organization_id: string; id: string }>(
        `WITH b AS (SELECT organization_id, id FROM events WHERE (organization_id, id) > ($1, $2) ORDER BY organization_id, id LIMIT ${batch})
         SELECT b.organization_id::text, b.id::text FROM b ORDER BY b.organization_id DESC, b.id DESC LIMIT 1`,
        cursor,
      );
      const end = last.rows[0];
      if (!end) break;
      const updated = await client.query(
        `UPDATE events SET amount_cents = (amount * 100)::bigint
          WHERE (organization_id, id) > ($1, $2) AND (organization_id, id) <= ($3, $4)`,
        [...cursor, end.organization_id, end.id],
      );
      worst = Math.max(worst, performance.now() - t0);
      batches++;
      smallest = Math.min(smallest, updated.rowCount ?? 0);
      cursor = [end.organization_id, end.id];
    }
    const backfillMs = performance.now() - started;
    const [left] = (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE amount_cents IS NULL')).rows;
    if (left?.n !== 0) throw new Error(`the backfill left ${left?.n} rows`);
    console.error(`${distributed ? 'cluster' : 'one node'}: ${batches} batches, the smallest of ${smallest} rows`);
    return {
      readMedianMs: median(latencies),
      readP95Ms: latencies[Math.floor(latencies.length * 0.95)] ?? 0,
      tasks,
      backfillMs,
      batches,
      worstBatchMs: worst,
    };
  } finally {
    await client.end();
  }
}

const single = await startThrowawayPostgres({ prefer: 'local' });
const cluster = await startThrowawayCitus({ workers, shardCount: 32 });
try {
  const one = await measure(single.url, false);
  const many = await measure(cluster.url, true);
  const line = (name: string, f: Figures): string[] => [name, fmt(f.readMedianMs, 2), fmt(f.readP95Ms, 2), f.tasks, fmt(f.backfillMs, 0), String(f.batches), fmt(f.worstBatchMs, 0)];
  console.log(`${rows} events over ${tenants} tenants; ${reads} tenant reads; batches of ${batch}`);
  console.log(
    table(
      ['server', 'read median ms', 'read p95 ms', 'tasks per tenant read', 'backfill ms', 'batches', 'worst batch ms'],
      [line('one PostgreSQL', one), line(`Citus 1 + ${workers} (32 shards)`, many)],
    ),
  );
  console.log(`ratios (cluster / one node): read median ${fmt(many.readMedianMs / one.readMedianMs, 2)}x, backfill ${fmt(many.backfillMs / one.backfillMs, 2)}x, worst batch ${fmt(many.worstBatchMs / one.worstBatchMs, 2)}x`);
  const file = writeResult('citus', { machine: machine(), rows, tenants, reads, batch, workers, single: one, cluster: many });
  console.log(`written to ${file}`);
} finally {
  await cluster.close();
  await single.close();
}
