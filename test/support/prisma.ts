/**
 * The real Prisma CLI (6.19, WebAssembly schema engine, no binary download) against a
 * database of the test server: migrate deploy/status/diff/resolve, db pull, validate.
 * Each start costs seconds: tests batch their assertions and set a fixture up once per file.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const prismaCli = require.resolve('prisma/build/index.js');
const configFile = fileURLToPath(new URL('./prisma.config.ts', import.meta.url));

/** Engine paths that exist, so the CLI never tries to download a binary (the WebAssembly engine is used). */
function dummyEngines(): Record<string, string> {
  const dir = join(tmpdir(), `tenantify-prisma-engines-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const library = join(dir, 'libquery_engine-dummy.so.node');
  const binary = join(dir, 'schema-engine-dummy');
  writeFileSync(library, '');
  writeFileSync(binary, '');
  return { PRISMA_QUERY_ENGINE_LIBRARY: library, PRISMA_SCHEMA_ENGINE_BINARY: binary };
}

export interface PrismaResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A Prisma project: `dir` holds schema.prisma and migrations/; `url` is its database. */
export interface PrismaProject {
  dir: string;
  url: string;
}

/** The shadow database `migrate diff --from-migrations` builds its picture in: one per database, recreated each time. */
function shadowUrl(url: string): string {
  const u = new URL(url);
  u.pathname = `${u.pathname}_shadow`;
  return u.toString();
}

export function prisma(project: PrismaProject, args: string[]): Promise<PrismaResult> {
  const child = spawn(process.execPath, [prismaCli, ...args, '--config', configFile], {
    cwd: project.dir,
    env: {
      ...process.env,
      ...dummyEngines(),
      DATABASE_URL: project.url,
      TENANTIFY_PRISMA_SCHEMA: join(project.dir, 'schema.prisma'),
      TENANTIFY_PRISMA_MIGRATIONS: join(project.dir, 'migrations'),
      TENANTIFY_PRISMA_SHADOW_URL: shadowUrl(project.url),
      PRISMA_HIDE_UPDATE_MESSAGE: '1',
      CHECKPOINT_DISABLE: '1',
      NO_COLOR: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function ok(project: PrismaProject, args: string[]): Promise<PrismaResult> {
  const r = await prisma(project, args);
  if (r.code !== 0) throw new Error(`prisma ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** `prisma migrate deploy`: every migration of the folder not yet applied. */
export function migrateDeploy(project: PrismaProject): Promise<PrismaResult> {
  return ok(project, ['migrate', 'deploy']);
}

/** `prisma migrate status` (exit 0 when the database is up to date with the folder). */
export function migrateStatus(project: PrismaProject): Promise<PrismaResult> {
  return prisma(project, ['migrate', 'status']);
}

/** `prisma migrate diff FROM TO --exit-code [--script]`: exit 0 when they agree, 2 when they differ. */
export function migrateDiff(project: PrismaProject, from: string[], to: string[], script = true): Promise<PrismaResult> {
  return prisma(project, ['migrate', 'diff', ...from, ...to, '--exit-code', ...(script ? ['--script'] : [])]);
}

/** `prisma db pull --print`: the schema Prisma reads from the database, without the adapter's warning lines. */
export async function dbPull(project: PrismaProject): Promise<string> {
  const { stdout } = await ok(project, ['db', 'pull', '--print']);
  const start = stdout.search(/^(generator|datasource) /m);
  return start < 0 ? stdout : stdout.slice(start);
}

/** `prisma migrate resolve --applied NAME`: a migration marked applied without running it (baselining a legacy database). */
export function migrateResolveApplied(project: PrismaProject, migration: string): Promise<PrismaResult> {
  return ok(project, ['migrate', 'resolve', '--applied', migration]);
}
