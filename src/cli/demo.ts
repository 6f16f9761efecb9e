/**
 * `npm run demo`: the main job on a throwaway PostgreSQL. Loads the legacy fixture of the
 * reference plan (users and hosts), then walks through the commands a DBA runs, narrating
 * each step. Everything it starts is removed at the end, also on failure or Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Chalk } from 'chalk';
import pg from 'pg';
import { withThrowawayPostgres } from '../db/throwaway.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/tenantify', import.meta.url));
const fixture = fileURLToPath(new URL('../../fixtures/hosts-to-organizations/legacy.sql', import.meta.url));
const style = new Chalk({ level: process.stdout.isTTY && !process.env['NO_COLOR'] ? 1 : 0 });

function say(text: string): void {
  process.stdout.write(`\n${style.bold.cyan('▸')} ${style.bold(text)}\n`);
}

let snapshots = '';

function tenantify(args: string[], url: string): Promise<number> {
  process.stdout.write(style.dim(`$ tenantify ${args.join(' ')}\n`));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: 'inherit', env: { ...process.env, DATABASE_URL: url, TENANTIFY_SNAPSHOT_DIR: snapshots } });
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

async function expectExit(args: string[], url: string, wanted = 0): Promise<void> {
  const code = await tenantify(args, url);
  if (code !== wanted) throw new Error(`tenantify ${args.join(' ')} exited ${code}, expected ${wanted}`);
}

async function main(): Promise<void> {
  const started = performance.now();
  snapshots = await mkdtemp(join(tmpdir(), 'tenantify-demo-snapshots-'));
  say('Starting a throwaway PostgreSQL (Docker if an engine answers, else the local binaries)...');
  await withThrowawayPostgres({ log: (line) => process.stdout.write(style.dim(`  ${line}\n`)) }, async (server) => {
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query('CREATE DATABASE legacy_app');
    await admin.end();
    const url = new URL(server.url);
    url.pathname = '/legacy_app';
    const target = url.toString();

    say('Loading the legacy single-tenant app: users own hosts directly, no organizations.');
    const client = new pg.Client({ connectionString: target });
    await client.connect();
    await client.query(await readFile(fixture, 'utf8'));
    const counts = await client.query<{ users: number; hosts: number }>('SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM hosts)::int AS hosts');
    await client.end();
    process.stdout.write(`  ${counts.rows[0]?.users} users, ${counts.rows[0]?.hosts} hosts\n`);

    say('`plan` reads migrations/, backfills/ and rollbacks/ and shows every unit in order, before anything runs.');
    await expectExit(['plan'], target);

    say('`apply` runs each unit in its own transaction: a pg_dump snapshot first, then the body, the verify queries, and the ledger.');
    await expectExit(['apply'], target);

    say('`verify` runs every applied unit\'s verify queries again, read-only, as the ledger stored them.');
    await expectExit(['verify'], target);

    say('`status` reads the ledger: every unit, when it was applied, how long it took, and the last run.');
    await expectExit(['status'], target);

    say('`rollback --steps 3` reverts the three newest units with their rollback files, newest first.');
    await expectExit(['rollback', '--steps', '3', '--yes'], target);
    await expectExit(['status'], target);

    say('`apply` again resumes the plan: only the reverted units run.');
    await expectExit(['apply'], target);
    await expectExit(['verify'], target);

    say('`snapshots list` shows the pg_dump snapshots taken before the units that changed existing tables.');
    await expectExit(['snapshots', 'list'], target);
  });
  await rm(snapshots, { recursive: true, force: true });
  say(`Done in ${((performance.now() - started) / 1000).toFixed(1)}s; the throwaway server and its files are gone.`);
}

main().catch(async (error: unknown) => {
  if (snapshots) await rm(snapshots, { recursive: true, force: true });
  process.stderr.write(`${style.red('demo failed:')} ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
