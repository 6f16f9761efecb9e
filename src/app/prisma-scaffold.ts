/**
 * `tenancy scaffold --prisma DIR`: keeps a Prisma app's schema.prisma and migration history
 * true after the upgrade. DIR holds schema.prisma and migrations/. Written beside the plan:
 * schema.prisma edited (tenancy/prisma/tenancy-edits.ts, laid out by Prisma's own
 * formatter, validated by Prisma's own validator), one migration folder with the upgrade's
 * net DDL for fresh environments, and the plan's last unit recording that migration in
 * `_prisma_migrations` on the database the plan upgrades.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { loadSqlParser, parseSqlUnit } from '../plan/sql-unit.js';
import { runtimeImport } from '../runtime-import.js';
import { prismaChecksum, prismaMigrationSql, recordUnit } from '../tenancy/prisma/migration.js';
import { readModels, editSchema, formatTouched } from '../tenancy/prisma/schema-file.js';
import { tenancyEdits, type TenancyFacts } from '../tenancy/prisma/tenancy-edits.js';
import type { ScaffoldUnit } from '../tenancy/scaffold/index.js';

type SchemaWasm = typeof import('@prisma/prisma-schema-wasm');

export interface PrismaScaffoldResult {
  /** The unit that records the migration; the plan's last. */
  unit: ScaffoldUnit | undefined;
  /** Writes schema.prisma and the migration folder; returns the paths written. */
  write: () => Promise<string[]>;
  /** Tenant tables no model of schema.prisma maps to. */
  unmapped: string[];
}

/** `20260301090000_init` → its 14-digit timestamp. */
const migrationFolder = /^(\d{14})_/;

export async function prismaScaffold(
  dir: string,
  facts: TenancyFacts,
  units: ScaffoldUnit[],
  now: Date = new Date(),
): Promise<PrismaScaffoldResult> {
  const schemaPath = join(dir, 'schema.prisma');
  if (!existsSync(schemaPath))
    throw new UsageError(`${schemaPath} not found: --prisma names the folder that holds schema.prisma and migrations/`, {
      code: 'prisma-schema-missing',
      hint: 'pass the Prisma folder of the app (usually prisma/)',
    });
  const original = await readFile(schemaPath, 'utf8');
  const wasm = await runtimeImport<SchemaWasm>('@prisma/prisma-schema-wasm', () => import('@prisma/prisma-schema-wasm'));
  problemsOf(wasm, original, schemaPath, 'prisma-schema-invalid', 'fix schema.prisma first (prisma validate says the same)');

  const slug = facts.tenantsTable.replace(/[^A-Za-z0-9]+/g, '_').toLowerCase();
  const folders = existsSync(join(dir, 'migrations')) ? (await readdir(join(dir, 'migrations'))).sort() : [];
  // A second scaffold finds its migration there already: schema and history are left as they are.
  if (folders.some((f) => f.endsWith(`_tenantify_${slug}`))) return { unit: undefined, write: async () => [], unmapped: [] };

  // schema.prisma: the edits, the touched models laid out by Prisma's formatter, the rest as it was.
  const plan = tenancyEdits(readModels(original), facts);
  const edited = editSchema(original, plan.edits, plan.added);
  const formatted = formatWith(wasm, edited);
  const schema = formatTouched(edited, formatted, plan.touched);
  problemsOf(wasm, schema, schemaPath, 'prisma-schema-edit-invalid', 'this is a tenantify bug: please report it with the schema');

  // The migration: the net DDL of the plan's migration units.
  await loadSqlParser();
  const defaults = { lockTimeoutMs: undefined, statementTimeoutMs: undefined, retries: 0 };
  const sources = units.map((u) => ({
    unit: u.name,
    kind: u.kind,
    statements: parseSqlUnit(`${u.name}.sql`, u.sql, defaults).statements.map((s) => s.sql),
  }));
  const name = `${timestamp(now, folders)}_tenantify_${slug}`;
  const sql = prismaMigrationSql(
    sources,
    [
      `The tenancy upgrade (${facts.tenantsTable}, key ${facts.keyed[0]?.keyColumn ?? ''}), written by tenantify tenancy scaffold.`,
      '',
      'A database tenantify upgraded has all of this already: its apply records this migration',
      'as applied. An environment built by `prisma migrate deploy` gets the same schema here, at once',
      '(no rows to fill).',
    ].join('\n'),
  );
  const record = recordUnit(name, prismaChecksum(sql));
  return {
    unit: { name: record.name, kind: 'migration', step: 9, summary: record.summary, sql: record.sql, rollback: record.rollback },
    unmapped: plan.unmapped,
    write: async () => {
      const folder = join(dir, 'migrations', name);
      await mkdir(folder, { recursive: true });
      await writeFile(join(folder, 'migration.sql'), sql, { flag: 'wx' });
      await writeFile(schemaPath, schema);
      return [join(folder, 'migration.sql'), schemaPath];
    },
  };
}

/** Prisma's formatter (what `prisma format` does) on one schema file. */
function formatWith(wasm: SchemaWasm, text: string): string {
  const params = { textDocument: { uri: 'file:/dev/null' }, options: { tabSize: 2, insertSpaces: true } };
  const files = JSON.parse(wasm.format(JSON.stringify([['schema.prisma', text]]), JSON.stringify(params))) as [string, string][];
  return files[0]?.[1] ?? text;
}

function problemsOf(wasm: SchemaWasm, text: string, path: string, code: string, hint: string): void {
  try {
    wasm.validate(JSON.stringify({ prismaSchema: [['schema.prisma', text]], noColor: true }));
  } catch (error) {
    let message = String(error);
    try {
      message = (JSON.parse(message.replace(/^Error:\s*/, '')) as { message: string }).message;
    } catch {
      // not JSON: the message as it is
    }
    throw new UsageError(`${path}: ${message}`, { code, hint });
  }
}

/** Now in UTC as Prisma names migrations, after every migration the folder holds. */
function timestamp(now: Date, folders: string[]): string {
  const at = (d: Date) => d.toISOString().replace(/\D/g, '').slice(0, 14);
  const last = folders.flatMap((f) => migrationFolder.exec(f)?.[1] ?? []).at(-1);
  let stamp = at(now);
  if (last && stamp <= last) stamp = (BigInt(last) + 1n).toString();
  return stamp;
}
