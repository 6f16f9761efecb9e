/**
 * tenancyScaffold(): the tenant upgrade plan written into a plan directory. Reads the
 * model (config + flags) and the catalog (a live database, read-only, or a fixture on a
 * throwaway PostgreSQL), lets the pure core write the units, then writes them numbered
 * after the plan's last unit, never over a file, and the model into the config.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withSession } from '../db/connection.js';
import { withFixtureDatabase } from '../db/fixture.js';
import { UsageError } from '../errors.js';
import { loadConfig } from '../plan/config.js';
import { unitFilePattern } from '../plan/load.js';
import { readCatalog } from '../tenancy/catalog.js';
import { analyzeTenancy } from '../tenancy/graph.js';
import { ensureKeyTypes } from '../tenancy/key-type.js';
import { tenancyConfigFrom, type TenancyOverrides } from '../tenancy/model.js';
import { tenancyFacts } from '../tenancy/prisma/facts.js';
import { keepSchema, scaffoldPlan } from '../tenancy/scaffold/index.js';
import type { Catalog, TenancyConfig } from '../tenancy/types.js';
import { tableName, writtenName } from '../tenancy/sql-text.js';
import { prismaScaffold } from './prisma-scaffold.js';
import { writeTenancyModel } from './tenancy-analyze.js';

export interface TenancyScaffoldOptions {
  dir: string;
  /** The database whose catalog the plan is written for (read only). */
  url?: string | undefined;
  /** Or a SQL file loaded into a throwaway PostgreSQL. */
  fixture?: string | undefined;
  overrides: TenancyOverrides;
  schemas?: string[] | undefined;
  composite: boolean;
  rls: boolean;
  /** Place the tenancy on Citus (implies composite keys). */
  citus?: boolean;
  /** A Prisma app's folder (schema.prisma, migrations/): kept true to the upgrade (app/prisma-scaffold.ts). */
  prisma?: string | undefined;
  log?: (line: string) => void;
}

export interface ScaffoldedFile {
  unit: string;
  kind: 'migration' | 'backfill';
  step: number;
  file: string;
  rollback: string;
  summary: string;
}

export interface TenancyScaffoldResult {
  /** The units written now. */
  files: ScaffoldedFile[];
  /** Units of the scaffold the plan holds already (same name), left as they are: a second run writes only what is missing. */
  present: { unit: string; file: string }[];
  config: string;
  model: TenancyConfig;
  /** Files written in the Prisma folder (--prisma): the migration and schema.prisma. */
  prisma: string[];
}

export async function tenancyScaffold(options: TenancyScaffoldOptions): Promise<TenancyScaffoldResult> {
  const config = await loadConfig(options.dir);
  const model: TenancyConfig = tenancyConfigFrom(config.tenancy, options.overrides, (note) => options.log?.(note));
  if (options.rls) model.rls = true;
  const last = await lastPrefix(options.dir);

  const readOptions = { ...(options.schemas ? { schemas: options.schemas } : {}), excludeSchemas: [config.ledgerSchema, keepSchema] };
  const catalog = options.fixture
    ? await catalogOfFixture(options.fixture, readOptions, options.log)
    : await withSession(options.url, 'tenancy scaffold (read only)', (s) => readCatalog(s.client, readOptions));
  const analysis = analyzeTenancy(catalog, model);
  ensureKeyTypes(analysis, catalog);
  const scaffoldOptions = {
    composite: options.composite || Boolean(options.citus),
    rls: model.rls ?? false,
    citus: Boolean(options.citus),
  };
  const units = scaffoldPlan(analysis, catalog, scaffoldOptions);
  if (units.length === 0)
    throw new UsageError('nothing to scaffold: every tenant table has its key already', {
      code: 'nothing-to-scaffold',
      hint: 'run `tenantify tenancy check` to see what is left',
    });

  // A Prisma app: its migration is recorded by the plan's last unit; schema and migration written with the plan.
  const prisma = options.prisma
    ? await prismaScaffold(options.prisma, tenancyFacts(analysis, catalog, scaffoldOptions, units), units)
    : undefined;
  const history = catalog.tables.some((t) => t.name === tableName('public', '_prisma_migrations'));
  if (prisma?.unit && history) units.push(prisma.unit);
  if (prisma?.unit && !history)
    options.log?.(
      'note: the database has no public._prisma_migrations (never deployed with prisma migrate): the migration is written, not recorded',
    );
  for (const table of prisma?.unmapped ?? [])
    options.log?.(`note: no model of schema.prisma maps to ${table}: its key is left out of schema.prisma`);

  // Idempotent: a unit whose name the plan holds already (an earlier scaffold) is not written again.
  const existing = await unitsByName(options.dir);
  const present = units.flatMap((u) => existing.get(u.name) ?? []);
  const missing = units.filter((u) => !existing.has(u.name));
  const width = Math.max(4, String(last.value + BigInt(missing.length)).length, last.width);
  const files: ScaffoldedFile[] = missing.map((u, i) => {
    const id = `${String(last.value + BigInt(i + 1)).padStart(width, '0')}_${u.name}`;
    return {
      unit: id,
      kind: u.kind,
      step: u.step,
      file: `${u.kind === 'migration' ? 'migrations' : 'backfills'}/${id}.sql`,
      rollback: `rollbacks/${id}.sql`,
      summary: u.summary,
    };
  });
  const taken = files.flatMap((f) => [f.file, f.rollback]).filter((path) => existsSync(join(options.dir, path)));
  if (taken.length > 0) {
    throw new UsageError(`${join(options.dir, taken[0] as string)} exists: tenancy scaffold never overwrites a file`, {
      code: 'file-exists',
      hint: 'move or remove it (or scaffold into another --dir); nothing was written',
      details: taken.slice(1),
    });
  }

  for (const sub of ['migrations', 'backfills', 'rollbacks']) await mkdir(join(options.dir, sub), { recursive: true });
  for (const [i, u] of missing.entries()) {
    const f = files[i] as ScaffoldedFile;
    await writeFile(join(options.dir, f.file), u.sql, { flag: 'wx' });
    await writeFile(join(options.dir, f.rollback), u.rollback, { flag: 'wx' });
  }
  const written: TenancyConfig = {
    ...model,
    tenants: model.tenants ?? bareName(analysis.tenants),
    key: analysis.key,
    setting: analysis.setting,
    rls: model.rls ?? false,
  };
  const configPath = await writeTenancyModel(options.dir, written);
  const prismaFiles = prisma ? await prisma.write() : [];
  return { files, present, config: configPath, model: written, prisma: prismaFiles };
}

function bareName(name: string): string {
  return writtenName(name);
}

/** The highest unit number of the plan (0 when empty) and the width its files use (rollbacks follow their units). */
export async function lastPrefix(dir: string): Promise<{ value: bigint; width: number }> {
  let value = 0n;
  let width = 4;
  for (const sub of ['migrations', 'backfills']) {
    let names: string[];
    try {
      names = await readdir(join(dir, sub));
    } catch {
      continue;
    }
    for (const name of names) {
      const match = unitFilePattern.exec(name);
      if (!match) continue;
      const n = BigInt(match[1] as string);
      if (n >= value) {
        value = n;
        width = (match[1] as string).length;
      }
    }
  }
  return { value, width };
}

/** The plan's units by name (the part after the number): e.g. `backfill_tasks_organization_id` → its id and file. */
async function unitsByName(dir: string): Promise<Map<string, { unit: string; file: string }>> {
  const found = new Map<string, { unit: string; file: string }>();
  for (const sub of ['migrations', 'backfills']) {
    let names: string[];
    try {
      names = await readdir(join(dir, sub));
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      const match = unitFilePattern.exec(name);
      if (match) found.set(match[3] as string, { unit: name.replace(/\.(sql|ts)$/, ''), file: `${sub}/${name}` });
    }
  }
  return found;
}

function catalogOfFixture(
  fixture: string,
  readOptions: { schemas?: string[]; excludeSchemas: string[] },
  log?: (line: string) => void,
): Promise<Catalog> {
  return withFixtureDatabase(fixture, { log, purpose: 'tenancy scaffold (fixture)' }, (url) =>
    withSession(url, 'tenancy scaffold (fixture)', (s) => readCatalog(s.client, readOptions)),
  );
}
