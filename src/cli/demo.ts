/**
 * `npm run demo`: what tenantify is for, on a throwaway PostgreSQL, in about a minute. A
 * legacy single-tenant restaurant back office (fixtures/restaurant-platform) becomes a
 * multi-tenant one while its app keeps writing: `tenancy analyze` decides each table's
 * tenant, `tenancy scaffold` writes the live-safe plan, `apply` runs it beside the app's
 * writes, `tenancy check` proves isolation with row level security, the database refuses a
 * cross-tenant write, then `verify`, a one-unit `rollback` and `status`.
 *
 * `npm run demo -- --executor`: the executor's own story on the reference plan (snapshots,
 * a rollback of three units, resume). Everything either starts is removed at the end, also
 * on failure or Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Chalk } from 'chalk';
import pg from 'pg';
import { createScratchDatabase } from '../db/scratch-database.js';
import { withThrowawayPostgres } from '../db/throwaway.js';
import { startLegacyApp } from './demo-app.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/tenantify', import.meta.url));
const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
const style = new Chalk({ level: process.stdout.isTTY && !process.env['NO_COLOR'] ? 1 : 0 });

/** A step's title: the test of the demo looks for each of these lines. */
function say(text: string): void {
  process.stdout.write(`\n${style.bold.cyan('▸')} ${style.bold(text)}\n`);
}

function indent(text: string): void {
  process.stdout.write(`${text.replace(/^/gm, '  ')}\n`);
}

interface Run {
  url: string;
  /** The plan directory the commands run in. */
  dir: string;
  /** Where snapshots go: a temporary directory of the demo's. */
  snapshots: string;
}

function tenantify(run: Run, args: string[]): Promise<number> {
  process.stdout.write(style.dim(`$ tenantify ${args.join(' ')}\n`));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: run.dir,
      stdio: 'inherit',
      env: { ...process.env, DATABASE_URL: run.url, TENANTIFY_SNAPSHOT_DIR: run.snapshots },
    });
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

async function expectExit(run: Run, args: string[], wanted = 0): Promise<void> {
  const code = await tenantify(run, args);
  if (code !== wanted) throw new Error(`tenantify ${args.join(' ')} exited ${code}, expected ${wanted}`);
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A database of its own on the server, so a demo may share a server (the demo's test does). */
async function legacyDatabase(serverUrl: string, fixture: string): Promise<string> {
  const name = `legacy_app_${randomBytes(3).toString('hex')}`;
  await withClient(serverUrl, (admin) => createScratchDatabase(admin, name));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  await withClient(url.toString(), async (client) => client.query(await readFile(join(fixtures, fixture), 'utf8')));
  return url.toString();
}

/** The tenant upgrade of a live restaurant back office. */
async function tenantUpgrade(serverUrl: string, run: Omit<Run, 'url'>): Promise<void> {
  say('Loading the legacy app: a restaurant back office with no notion of tenants.');
  const url = await legacyDatabase(serverUrl, 'restaurant-platform/legacy.sql');
  const r: Run = { ...run, url };
  const counts = await withClient(
    url,
    async (c) =>
      (
        await c.query<{ restaurants: number; reservations: number; customers: number }>(
          'SELECT (SELECT count(*) FROM restaurants)::int AS restaurants, (SELECT count(*) FROM customers)::int AS customers, (SELECT count(*) FROM reservations)::int AS reservations',
        )
      ).rows[0],
  );
  indent(
    `${counts?.restaurants} restaurants, ${counts?.customers} customers, ${counts?.reservations} reservations; every restaurant is to become a tenant`,
  );
  await copyFile(join(fixtures, 'restaurant-platform/scaffold.config.json'), join(r.dir, 'tenantify.config.json'));

  say('`tenancy analyze` reads the catalog and the data: how does every row find its restaurant?');
  await expectExit(r, ['tenancy', 'analyze']);
  indent(
    [
      'The DBA decides from this table: each restaurant becomes an organization; the tables reach it',
      'through their foreign keys; `users` stays global (staff work for several restaurants);',
      'no row is unresolved and no reference crosses tenants, so nothing needs a policy.',
    ].join('\n'),
  );

  say('`tenancy scaffold --composite --rls` writes the whole plan: units a DBA reviews, each safe on a live database.');
  await expectExit(r, ['tenancy', 'scaffold', '--composite', '--rls']);
  const written = await unitFiles(r.dir);
  indent(`${written.length} units, each with its rollback: ${written.slice(0, 4).join(', ')}, ... ${written.at(-1) ?? ''}`);
  const shown = written.find((f) => f.startsWith('backfills/') && f.includes('reservations')) ?? written[0];
  if (shown) {
    say(`One unit in full, as the DBA reviews it: ${shown}`);
    indent(style.dim((await readFile(join(r.dir, shown), 'utf8')).trimEnd()));
  }

  say('`apply` runs the plan while the legacy app keeps writing reservations beside it.');
  const app = startLegacyApp(url);
  const applied = await tenantify(r, ['apply']);
  const writes = await app.stop();
  if (applied !== 0) throw new Error(`tenantify apply exited ${applied}, expected 0`);
  indent(`legacy app during the upgrade: ${writes.count} writes, ${writes.errors} errors, worst write ${writes.worstMs.toFixed(0)} ms`);
  if (writes.errors > 0) throw new Error(`the legacy app's writes failed during the upgrade: ${writes.firstError ?? ''}`);

  say('`tenancy check --as demo_app` proves isolation: keys, foreign keys, policies, and a live probe as the app role.');
  const role = `demo_app_${randomBytes(3).toString('hex')}`;
  await withClient(url, (c) =>
    c.query(
      `CREATE ROLE ${role} NOLOGIN; GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO ${role}; GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${role}`,
    ),
  );
  await expectExit(r, ['tenancy', 'check', '--as', role]);

  say('A planted cross-tenant write: the app role, working for one restaurant, books a table at another.');
  indent(await plantedWrite(url, role));

  say("`verify` runs every applied unit's verify queries again, read-only.");
  await expectExit(r, ['verify']);

  say('`rollback` reverts the newest unit exactly, with its rollback file; `status` says where the plan stands.');
  await expectExit(r, ['rollback', '--yes']);
  await expectExit(r, ['status']);
}

/** The app role, at tenant A, inserts a reservation of tenant B's restaurant: row level security refuses it. */
async function plantedWrite(url: string, role: string): Promise<string> {
  return withClient(url, async (c) => {
    const tenants = await c.query<{ mine: string; theirs: number }>(
      'SELECT a.organization_id::text AS mine, b.id AS theirs FROM restaurants a, restaurants b WHERE a.organization_id <> b.organization_id ORDER BY a.id, b.id LIMIT 1',
    );
    const pair = tenants.rows[0];
    if (!pair) throw new Error('the fixture has fewer than two tenants');
    await c.query(`SET ROLE ${role}`);
    await c.query("SELECT set_config('app.tenant_id', $1, false)", [pair.mine]);
    try {
      await c.query('INSERT INTO reservations (restaurant_id, date, party_size, updated_at) VALUES ($1, now(), 2, now())', [pair.theirs]);
    } catch (error) {
      return `refused by PostgreSQL: ${(error as Error).message}`;
    }
    throw new Error('the cross-tenant write was accepted: the tenancy is not isolated');
  });
}

async function unitFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const kind of ['migrations', 'backfills']) {
    for (const file of await readdir(join(dir, kind)).catch(() => [] as string[])) found.push(`${kind}/${file}`);
  }
  return found.sort((a, b) => a.split('/')[1]!.localeCompare(b.split('/')[1]!));
}

/** The executor's own story: the reference plan on the hosts fixture, snapshots and resume. */
async function executorStory(serverUrl: string, run: Omit<Run, 'url'>): Promise<void> {
  say('Loading the legacy single-tenant app: users own hosts directly, no organizations.');
  const r: Run = { ...run, dir: root, url: await legacyDatabase(serverUrl, 'hosts-to-organizations/legacy.sql') };
  const counts = await withClient(
    r.url,
    async (c) =>
      (
        await c.query<{ users: number; hosts: number }>(
          'SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM hosts)::int AS hosts',
        )
      ).rows[0],
  );
  indent(`${counts?.users} users, ${counts?.hosts} hosts`);

  say('`plan` reads migrations/, backfills/ and rollbacks/ and shows every unit in order, before anything runs.');
  await expectExit(r, ['plan']);
  say('`apply` runs each unit in its own transaction: a pg_dump snapshot first, then the body, the verify queries, and the ledger.');
  await expectExit(r, ['apply']);
  say("`verify` runs every applied unit's verify queries again, read-only, as the ledger stored them.");
  await expectExit(r, ['verify']);
  say('`rollback --steps 3` reverts the three newest units with their rollback files, newest first.');
  await expectExit(r, ['rollback', '--steps', '3', '--yes']);
  await expectExit(r, ['status']);
  say('`apply` again resumes the plan: only the reverted units run.');
  await expectExit(r, ['apply']);
  say('`snapshots list` shows the pg_dump snapshots taken before the units that changed existing tables.');
  await expectExit(r, ['snapshots', 'list']);
}

async function main(): Promise<void> {
  const started = performance.now();
  const executor = process.argv.includes('--executor');
  const dir = await mkdtemp(join(tmpdir(), 'tenantify-demo-'));
  const snapshots = await mkdtemp(join(tmpdir(), 'tenantify-demo-snapshots-'));
  try {
    say('Starting a throwaway PostgreSQL (Docker if an engine answers, else the local binaries)...');
    // TENANTIFY_DEMO_SERVER_URL: a server to use as is (the demo's own test passes the suite's).
    await withThrowawayPostgres(
      { url: process.env['TENANTIFY_DEMO_SERVER_URL'], log: (line) => process.stdout.write(style.dim(`  ${line}\n`)) },
      async (server) => {
        await (executor ? executorStory : tenantUpgrade)(server.url, { dir, snapshots });
      },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(snapshots, { recursive: true, force: true });
  }
  say(`Done in ${((performance.now() - started) / 1000).toFixed(1)}s; the throwaway server and its files are gone.`);
  if (!executor) indent("The executor's own story (snapshots, rollback, resume): npm run demo -- --executor");
}

main().catch((error: unknown) => {
  process.stderr.write(`${style.red('demo failed:')} ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
