/**
 * bench/scaffold: the scaffolded tenant upgrade of hosts-to-organizations (the model in
 * fixtures/hosts-to-organizations/scaffold.config.json), grown with scale.sql to about a
 * million hosts, applied while a steady stream of single-row writes runs beside it, against:
 *
 * - one-shot: the same SQL run by `psql -1` (one transaction: no batches, no CONCURRENTLY,
 *   no lock timeouts), and
 * - naive: the same plan without the lock-safe steps, statement by statement (`psql`,
 *   autocommit): backfills as one UPDATE each, then plain `SET NOT NULL` (a scan under
 *   ACCESS EXCLUSIVE), plain `CREATE INDEX`, foreign keys added validated.
 *
 * The writes (what the legacy app does): at --rate per second on one connection, alternately
 * an INSERT of a host and an UPDATE of a random host, each latency measured from the moment
 * it was due (a write stuck behind a lock counts its wait). Goal: worst under 500 ms for the
 * scaffolded plan. Every contender starts from a fresh copy of one loaded, vacuumed template.
 *
 *   npx tsx bench/scaffold.ts [--scale 400000] [--rate 50] [--only scaffolded,one-shot,naive] [--no-build]
 * --scale is scale.sql's: users added, each with about 2.5 hosts (400000: about a million hosts).
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { findPgTool, libpqEnvironment } from '../src/db/pg-tools.js';
import { startThrowawayPostgres } from '../src/db/throwaway.js';
import {
  build,
  contenderEnv,
  expectSuccess,
  fmt,
  machine,
  repoRoot,
  table,
  timed,
  writeResult,
  sleep,
  withDatabase,
  runStatements as run,
} from './lib.js';

interface Args {
  scale: number;
  rate: number;
  only: string[];
  build: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { scale: 400_000, rate: 50, only: ['scaffolded', 'one-shot', 'naive'], build: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--scale') args.scale = Number(argv[++i]);
    else if (a === '--rate') args.rate = Number(argv[++i]);
    else if (a === '--only') args.only = String(argv[++i]).split(',').filter(Boolean);
    else if (a === '--no-build') args.build = false;
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

interface WriteStats {
  count: number;
  failed: number;
  maxMs: number;
  p99Ms: number;
  p50Ms: number;
}

/** The legacy app: single-row writes at a steady rate, latency from when each was due. */
class Writes {
  private latencies: number[] = [];
  private failed = 0;
  readonly errors = new Set<string>();
  private running = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: pg.Client,
    private readonly rate: number,
    private readonly users: number[],
    private readonly hosts: number,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const period = 1000 / this.rate;
    let next = performance.now();
    for (let i = 0; this.running; i++) {
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      const due = next;
      next += period;
      try {
        if (i % 2 === 0) {
          await this.client.query({
            name: 'ins',
            text: "INSERT INTO hosts (user_id, hostname) VALUES ($1, 'bench-' || $2 || '-' || clock_timestamp())",
            values: [this.users[(i * 7919) % this.users.length], i],
          });
        } else {
          await this.client.query({
            name: 'upd',
            text: 'UPDATE hosts SET last_seen_at = now() WHERE id = $1',
            values: [1 + Math.floor(Math.random() * this.hosts)],
          });
        }
        this.latencies.push(performance.now() - due);
      } catch (error) {
        this.failed++;
        this.errors.add((error as Error).message);
      }
    }
  }

  async stop(): Promise<WriteStats> {
    this.running = false;
    await this.loop;
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN;
    return { count: sorted.length, failed: this.failed, maxMs: sorted[sorted.length - 1] ?? 0, p99Ms: at(0.99), p50Ms: at(0.5) };
  }
}

/** A unit file's statements (the body: everything before its first precheck/verify section). */
function bodyOf(text: string): string[] {
  const body = text.split(/^-- tenantify:(?:verify|precheck) .*$/m)[0] ?? '';
  return body
    .split(/;\n\n/)
    .map((s) =>
      s
        .split('\n')
        .filter((l) => !l.startsWith('--'))
        .join('\n')
        .trim()
        .replace(/;$/, ''),
    )
    .filter(Boolean);
}

/** The plan's units in order, as statements, with keyset ranges opened to the whole table. */
function planStatements(dir: string): { unit: string; statements: string[] }[] {
  const files = ['migrations', 'backfills'].flatMap((d) => readdirSync(join(dir, d)).map((f) => ({ f, path: join(dir, d, f) })));
  files.sort((a, b) => a.f.localeCompare(b.f));
  return files.map(({ f, path }) => ({
    unit: f.replace(/\.sql$/, ''),
    statements: bodyOf(readFileSync(path, 'utf8')).map((s) => s.replace(/\S+ > \$1 AND \S+ <= \$2/g, 'true')),
  }));
}

/**
 * The same SQL in one transaction: CONCURRENTLY dropped (it cannot run in one), and the
 * tables locked first, as a maintenance-window script would (else the app's writes and the
 * script deadlock on the lock upgrades, and the server cancels one of them).
 */
function oneShot(dir: string): string {
  const statements = planStatements(dir).flatMap((u) => u.statements.map((s) => s.replace(/ CONCURRENTLY/g, '')));
  return `LOCK TABLE users, hosts, audit_logs IN ACCESS EXCLUSIVE MODE;\n\n${statements.join(';\n\n')};\n`;
}

/** Without the lock-safe steps: backfills whole, then plain SET NOT NULL, CREATE INDEX, validated foreign keys. */
function naive(dir: string): string {
  const first: string[] = [];
  const notNull: string[] = [];
  const indexes: string[] = [];
  const fks: string[] = [];
  for (const { statements } of planStatements(dir)) {
    for (const s of statements) {
      if (/FOREIGN KEY .* NOT VALID$/s.test(s)) fks.push(s.replace(/\s+NOT VALID$/, ''));
      else if (/CREATE INDEX CONCURRENTLY/.test(s)) indexes.push(s.replace(/ CONCURRENTLY/, ''));
      else if (/CHECK \(.*\) NOT VALID$|VALIDATE CONSTRAINT|DROP CONSTRAINT/.test(s)) continue;
      else if (/SET NOT NULL/.test(s)) notNull.push(s);
      else first.push(s);
    }
  }
  return `${[...first, ...notNull, ...indexes, ...fks].join(';\n\n')};\n`;
}

interface Outcome {
  name: string;
  ms: number;
  writes: WriteStats;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.build) build();
  const psql = findPgTool('psql');
  if (!psql) throw new Error('psql not found');
  const server = await startThrowawayPostgres({ log: (l) => process.stderr.write(`${l}\n`) });
  const root = mkdtempSync(join(tmpdir(), 'bench-scaffold-'));
  try {
    const fixture = join(repoRoot, 'fixtures', 'hosts-to-organizations');
    await run(server.url, ['CREATE DATABASE scaffold_tpl']);
    const tpl = withDatabase(server.url, 'scaffold_tpl');
    process.stderr.write(`loading legacy.sql and scale.sql (scale ${args.scale})...\n`);
    expectSuccess(
      'legacy.sql',
      await timed(psql.path, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', join(fixture, 'legacy.sql')], {
        env: { ...process.env, ...libpqEnvironment(tpl) },
      }),
    );
    expectSuccess(
      'scale.sql',
      await timed(psql.path, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', `scale=${args.scale}`, '-f', join(fixture, 'scale.sql')], {
        env: { ...process.env, ...libpqEnvironment(tpl) },
      }),
    );
    await run(tpl, ['VACUUM (FREEZE, ANALYZE)']);
    const [sizes] =
      (
        await run(tpl, [
          'SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM hosts)::int AS hosts, (SELECT max(id) FROM hosts)::int AS max_host, (SELECT max(id) FROM users)::int AS max_user, (SELECT count(*) FROM audit_logs)::int AS audit',
        ])
      )[0]?.rows ?? [];
    process.stderr.write(`template: ${JSON.stringify(sizes)}\n`);
    const users = ((await run(tpl, ['SELECT id FROM users TABLESAMPLE SYSTEM (5) LIMIT 2000']))[0]?.rows ?? []).map((r) => Number(r['id']));

    const dir = join(root, 'plan');
    mkdirSync(dir);
    copyFileSync(join(fixture, 'scaffold.config.json'), join(dir, 'tenantify.config.json'));
    const cli = join(repoRoot, 'bin', 'tenantify');
    expectSuccess(
      'scaffold',
      await timed(process.execPath, [cli, 'tenancy', 'scaffold', '-d', tpl, '--dir', dir], { env: contenderEnv(false) }),
    );
    writeFileSync(join(root, 'one-shot.sql'), oneShot(dir));
    writeFileSync(join(root, 'naive.sql'), naive(dir));

    const outcomes: Outcome[] = [];
    for (const name of args.only) {
      const db = `scaffold_${name.replace(/-/g, '_')}`;
      await run(server.url, [`DROP DATABASE IF EXISTS ${db}`, `CREATE DATABASE ${db} TEMPLATE scaffold_tpl`, 'CHECKPOINT']);
      const url = withDatabase(server.url, db);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const writes = new Writes(client, args.rate, users, Number(sizes?.['max_host'] ?? 1));
      writes.start();
      await sleep(1000);
      let result;
      if (name === 'scaffolded')
        result = await timed(process.execPath, [cli, 'apply', '-d', url, '--dir', dir, '--no-snapshot'], { env: contenderEnv(false) });
      else
        result = await timed(
          psql.path,
          ['-X', '-q', '-v', 'ON_ERROR_STOP=1', ...(name === 'one-shot' ? ['-1'] : []), '-f', join(root, `${name}.sql`)],
          { env: { ...process.env, ...libpqEnvironment(url) } },
        );
      await sleep(1000);
      const stats = await writes.stop();
      await client.end();
      expectSuccess(name, result);
      outcomes.push({ name, ms: result.ms, writes: stats });
      process.stderr.write(
        `${name}: ${fmt(result.ms / 1000)} s, writes worst ${fmt(stats.maxMs, 0)} ms p99 ${fmt(stats.p99Ms, 0)} ms (${stats.count} writes, ${stats.failed} failed${writes.errors.size > 0 ? `: ${[...writes.errors].join('; ')}` : ''})\n`,
      );
      await run(server.url, [`DROP DATABASE ${db}`]);
    }

    const base = outcomes.find((o) => o.name === 'one-shot');
    console.log(
      `hosts-to-organizations scaffolded plan on ${sizes?.['hosts']} hosts, ${sizes?.['users']} users, ${sizes?.['audit']} audit entries; writes at ${args.rate}/s beside it`,
    );
    console.log(
      table(
        ['contender', 'apply s', 'vs one-shot', 'writes', 'failed', 'worst ms', 'p99 ms', 'p50 ms'],
        outcomes.map((o) => [
          o.name,
          fmt(o.ms / 1000),
          base ? `${fmt(o.ms / base.ms, 2)}x` : '',
          String(o.writes.count),
          String(o.writes.failed),
          fmt(o.writes.maxMs, 0),
          fmt(o.writes.p99Ms, 0),
          fmt(o.writes.p50Ms, 0),
        ]),
      ),
    );
    const scaffolded = outcomes.find((o) => o.name === 'scaffolded');
    if (scaffolded)
      console.log(
        `goal: worst write under 500 ms for the scaffolded plan: ${scaffolded.writes.maxMs < 500 ? 'met' : 'NOT met'} (${fmt(scaffolded.writes.maxMs, 0)} ms)`,
      );
    console.log(`results: ${writeResult('scaffold', { args, sizes, outcomes, machine: machine() })}`);
  } finally {
    await server.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
