/**
 * `npm run demo`: the main job on a throwaway PostgreSQL. Loads the legacy fixture of the
 * reference plan (users and hosts), then walks through the commands a DBA runs, narrating
 * each step. Everything it starts is removed at the end, also on failure or Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
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

function tenantify(args: string[], url: string): Promise<number> {
  process.stdout.write(style.dim(`$ tenantify ${args.join(' ')}\n`));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: 'inherit', env: { ...process.env, DATABASE_URL: url } });
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

    say('`plan` reads migrations/, backfills/ and rollbacks/ and shows what would run, in order.');
    await expectExit(['plan'], target);

    say('`apply` runs each unit in its own transaction, checks its verify queries, and records it in the ledger.');
    await expectExit(['apply'], target);

    say('`status` reads the ledger: every unit, when it was applied, how long it took, and the last run.');
    await expectExit(['status'], target);

    say('`apply` again has nothing to do: the ledger says everything is applied.');
    await expectExit(['apply'], target);

    say('Not built yet: `verify`, `rollback`, `snapshots` and `rehearse` (they say so and exit 2).');
    await expectExit(['verify'], target, 2);
  });
  say(`Done in ${((performance.now() - started) / 1000).toFixed(1)}s; the throwaway server and its files are gone.`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${style.red('demo failed:')} ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
