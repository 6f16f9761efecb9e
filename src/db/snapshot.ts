/**
 * pg_dump snapshots taken before a unit runs, and their exact restore.
 *
 * A unit's snapshot holds the existing tables it writes (or what its `snapshot` directive
 * names), in pg_dump's custom format (directory format with parallel jobs for big tables),
 * under <snapshotDir>/<run>/<unit>.dump, owner-only. Its manifest (tables, bytes, sha256,
 * versions, duration) goes to the ledger.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, open, readdir, rm, stat, statfs } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PlanError, UnitFailedError, UsageError } from '../errors.js';
import type { SnapshotScope, Unit } from '../plan/types.js';
import type { Session } from './connection.js';
import { findPgTool, libpqEnvironment, runTool, streamThrough, ToolError } from './pg-tools.js';

export interface SnapshotManifest {
  unit: string;
  run: number;
  scope: 'tables' | 'schema' | 'full';
  tables: string[];
  file: string;
  format: 'custom' | 'directory';
  bytes: number;
  sha256: string;
  pgDumpVersion: string;
  serverVersion: string;
  durationMs: number;
  takenAt: string;
}

/** Where a plan's snapshots live: TENANTIFY_SNAPSHOT_DIR, else the config's snapshotDir, relative to the plan directory. */
export function snapshotDirectory(planDirectory: string, configured: string): string {
  return resolve(planDirectory, process.env['TENANTIFY_SNAPSHOT_DIR'] || configured);
}

export interface SnapshotSettings {
  directory: string;
  /** Tables bigger than this (bytes, in all) are dumped in directory format with parallel jobs. */
  parallelAbove: number;
  /**
   * Left out of whole-database snapshots: restoring one must not put the ledger back to how
   * it was before the unit, under the run that is recording the restore.
   */
  ledgerSchema: string;
}

interface ResolvedTable {
  name: string;
  bytes: number;
}

/** Whether the unit may need a snapshot, known without asking the database. */
export function mayNeedSnapshot(unit: Unit): boolean {
  const scope = unit.options.snapshot;
  return scope.kind === 'default' ? unit.writes.length > 0 : scope.kind !== 'none';
}

/** What a unit's snapshot will hold, resolved against the database as it is now. */
export async function resolveScope(session: Session, unit: Unit): Promise<{ scope: SnapshotManifest['scope']; tables: ResolvedTable[] } | undefined> {
  const scope: SnapshotScope = unit.options.snapshot;
  if (scope.kind === 'none') return undefined;
  if (scope.kind === 'schema' || scope.kind === 'full') return { scope: scope.kind, tables: [] };
  const names = scope.kind === 'tables' ? scope.tables : unit.writes;
  if (names.length === 0) return undefined;
  const found = await session.client.query<{ wanted: string; name: string | null; bytes: number | null }>(
    `SELECT t.wanted, CASE WHEN c.oid IS NOT NULL THEN format('%I.%I', n.nspname, c.relname) END AS name, pg_total_relation_size(c.oid) AS bytes
       FROM unnest($1::text[]) AS t (wanted)
       LEFT JOIN pg_class c ON c.oid = to_regclass(t.wanted) AND c.relkind IN ('r', 'p')
       LEFT JOIN pg_namespace n ON n.oid = c.relnamespace`,
    [names],
  );
  const missing = found.rows.filter((r) => r.name === null).map((r) => r.wanted);
  if (scope.kind === 'tables' && missing.length > 0) {
    throw new PlanError(`the snapshot directive names ${missing.length === 1 ? 'a table that does' : 'tables that do'} not exist: ${missing.join(', ')}`, { file: unit.file, line: scope.line, hint: 'fix the `-- tenantify:snapshot` line (or use none); nothing was run' });
  }
  const tables = [...new Map(found.rows.filter((r) => r.name !== null).map((r) => [r.name as string, { name: r.name as string, bytes: Number(r.bytes ?? 0) }])).values()];
  return tables.length === 0 ? undefined : { scope: 'tables', tables };
}

export class SnapshotTaker {
  private readonly env: NodeJS.ProcessEnv;
  private pgDump: { path: string; major: number; version: string } | undefined;

  constructor(
    private readonly session: Session,
    private readonly settings: SnapshotSettings,
  ) {
    this.env = libpqEnvironment(session.url);
  }

  /** Before anything runs: pg_dump can dump this server, and the disk can hold the snapshots. */
  async preflight(units: Unit[]): Promise<void> {
    // A plan of units that write no existing table (new tables only) never calls pg_dump.
    if (!units.some(mayNeedSnapshot)) return;
    this.pgDump = findPgTool('pg_dump');
    const serverMajor = Math.floor(this.session.serverVersion / 10000);
    if (!this.pgDump) {
      throw new UsageError('pg_dump was not found: tenantify takes a snapshot before each unit', { hint: 'install the PostgreSQL client (e.g. `apt-get install -y postgresql-client`), put pg_dump on PATH, or pass --no-snapshot to run without snapshots' });
    }
    if (this.pgDump.major < serverMajor) {
      throw new UsageError(`pg_dump ${this.pgDump.version} cannot dump this PostgreSQL ${serverMajor} server`, { hint: `install pg_dump ${serverMajor} or newer and put it first on PATH, or pass --no-snapshot` });
    }
    let needed = 0;
    for (const unit of units) {
      const resolved = await resolveScope(this.session, unit);
      if (resolved?.scope === 'full') needed += await this.databaseSize();
      for (const table of resolved?.tables ?? []) needed += table.bytes;
    }
    const free = await freeBytes(this.settings.directory);
    if (free !== undefined && needed > free) {
      throw new UsageError(
        `not enough free disk for the snapshots: about ${mb(needed)} needed under ${this.settings.directory}, ${mb(free)} free`,
        { hint: 'free some space, point snapshotDir in tenantify.config.json elsewhere, prune old ones (`tenantify snapshots prune --keep N`), or pass --no-snapshot' },
      );
    }
  }

  async take(unit: Unit, runId: number): Promise<SnapshotManifest | undefined> {
    const resolved = await resolveScope(this.session, unit);
    if (!resolved) return undefined;
    const pgDump = this.pgDump ?? findPgTool('pg_dump');
    if (!pgDump) throw new UsageError('pg_dump was not found', { hint: 'install the PostgreSQL client or pass --no-snapshot' });
    const started = performance.now();
    const runDir = resolve(this.settings.directory, String(runId));
    await makePrivateDirectory(runDir);
    const bytesInAll = resolved.tables.reduce((sum, t) => sum + t.bytes, 0);
    const format: SnapshotManifest['format'] = resolved.scope === 'tables' && bytesInAll > this.settings.parallelAbove ? 'directory' : 'custom';
    const file = join(runDir, `${unit.id}.dump`);
    const args = ['--no-password', '-f', file];
    if (format === 'directory') {
      await rm(file, { recursive: true, force: true });
      args.push('-Fd', '-j', String(Math.max(2, Math.min(8, availableParallelism()))));
    } else {
      args.push('-Fc');
      // Created owner-only before pg_dump writes into it.
      await (await open(file, 'w', 0o600)).close();
      await chmod(file, 0o600);
    }
    if (resolved.scope === 'schema') args.push('--schema-only');
    if (resolved.scope !== 'tables') args.push(`--exclude-schema=${this.settings.ledgerSchema}`);
    for (const table of resolved.tables) args.push('-t', table.name);
    await runTool({ path: pgDump.path, args, env: this.env });
    if (format === 'directory') await restrictTree(file);
    const { bytes, sha256 } = await fingerprint(file);
    return {
      unit: unit.id,
      run: runId,
      scope: resolved.scope,
      tables: resolved.tables.map((t) => t.name),
      file,
      format,
      bytes,
      sha256,
      pgDumpVersion: pgDump.version,
      serverVersion: String(this.session.serverVersion),
      durationMs: Math.round(performance.now() - started),
      takenAt: new Date().toISOString(),
    };
  }

  private async databaseSize(): Promise<number> {
    const result = await this.session.client.query<{ bytes: number }>('SELECT pg_database_size(current_database()) AS bytes');
    return Number(result.rows[0]?.bytes ?? 0);
  }
}

/** sha256 and size of a dump file, or of a directory-format dump's files in name order. */
export async function fingerprint(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const info = await stat(path);
  const files = info.isDirectory() ? (await readdir(path)).sort().map((f) => join(path, f)) : [path];
  for (const file of files) {
    for await (const chunk of createReadStream(file)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Refuses a snapshot whose file is missing or does not match its recorded sha256. */
export async function ensureIntact(manifest: SnapshotManifest): Promise<void> {
  let actual: { sha256: string };
  try {
    actual = await fingerprint(manifest.file);
  } catch {
    throw new UsageError(`the snapshot of ${manifest.unit} is missing: ${manifest.file}`, { hint: 'nothing was restored; restore from another backup, or revert with the rollback file (without --from-snapshot)' });
  }
  if (actual.sha256 !== manifest.sha256) {
    throw new UsageError(
      `the snapshot of ${manifest.unit} is corrupt: ${manifest.file} has sha256 ${actual.sha256.slice(0, 16)}..., the ledger recorded ${manifest.sha256.slice(0, 16)}...`,
      { hint: 'nothing was restored; restore from another backup, or revert with the rollback file (without --from-snapshot)' },
    );
  }
}

/**
 * Puts a unit's tables back exactly as the snapshot holds them, in one transaction: the
 * tables are dropped (with the foreign keys of other tables that point at them, and the
 * views and materialized views built on them), restored from the dump (definition, data,
 * indexes, constraints, triggers, policies, sequences), and those foreign keys and views
 * are created again as they were just before the restore (materialized views refreshed).
 *
 * pg_restore's script streams into psql as bytes (streamThrough), between what the restore
 * adds before it (BEGIN, the DROP) and after it (the foreign keys, the views, COMMIT): memory
 * stays flat whatever the table's size, and the data arrives byte for byte. (`pg_restore -d`
 * could not run the DROP and the foreign keys in its transaction.) The COMMIT is ours, in
 * what comes after, rather than psql's --single-transaction, which commits at the end of its
 * input however that end came: it is written only once pg_restore has exited 0. When
 * pg_restore fails, psql is killed before its input ends and the server rolls back; when psql
 * stops at an error (ON_ERROR_STOP), the transaction dies with its connection.
 */
export async function restoreSnapshot(session: Session, manifest: SnapshotManifest): Promise<void> {
  if (manifest.scope === 'schema') {
    throw new UsageError(`the snapshot of ${manifest.unit} holds only the schema, not the data`, { hint: 'revert the unit with its rollback file instead' });
  }
  await ensureRestorable(session, manifest);
  const pgRestore = findPgTool('pg_restore');
  const psql = findPgTool('psql');
  if (!pgRestore || !psql) throw new UsageError('pg_restore and psql are needed to restore a snapshot', { hint: 'install the PostgreSQL client (e.g. `apt-get install -y postgresql-client`)' });
  const env = libpqEnvironment(session.url);
  try {
    const plan = manifest.scope === 'tables' ? await aroundTables(session, manifest.tables, env) : aroundDatabase;
    await streamThrough(
      { path: pgRestore.path, args: [...plan.restoreArgs, '-f', '-', manifest.file], env },
      { path: psql.path, args: ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], env },
      plan,
    );
  } catch (error) {
    if (!(error instanceof ToolError)) throw error;
    const what = manifest.scope === 'tables' ? manifest.tables.join(', ') : 'the whole database';
    throw new UnitFailedError(`restoring the snapshot of ${manifest.unit} (${what}) failed: ${error.summary}; it ran in one transaction, so nothing changed`, {
      details: error.message.split('\n'),
      hint: `nothing was restored: fix what the error names, then restore again. The snapshot file is ${manifest.file} (\`pg_restore -l\` lists what it holds)`,
    });
  }
}

interface RestorePlan {
  restoreArgs: string[];
  before: Buffer;
  after: Buffer;
}

/**
 * A whole-database snapshot: pg_restore writes the transaction itself (BEGIN first, COMMIT
 * last), which also keeps it from wrapping large objects in transactions of their own.
 */
const aroundDatabase: RestorePlan = {
  restoreArgs: ['--clean', '--if-exists', '--single-transaction'],
  before: Buffer.from('SET client_min_messages = warning;\n'),
  after: Buffer.alloc(0),
};

/**
 * Some tables (pg_dump -t dumps no large objects, so pg_restore's script holds no BEGIN or
 * COMMIT of its own): what goes before and after it, read from the database as it is now.
 */
async function aroundTables(session: Session, tables: string[], env: NodeJS.ProcessEnv): Promise<RestorePlan> {
  const incoming = await incomingForeignKeys(session, tables);
  const existing = await existingTables(session, tables);
  const views = await dependentViews(session, tables);
  const drop = existing.length > 0 ? `DROP TABLE ${existing.join(', ')} CASCADE;\n` : '';
  const foreignKeys = incoming.map((fk) => `ALTER TABLE ${fk.table} ADD CONSTRAINT ${quote(fk.name)} ${fk.definition};\n`).join('');
  const viewsScript = views.length > 0 ? await dumpViews(views, env) : Buffer.alloc(0);
  return {
    restoreArgs: [],
    before: Buffer.from(`SET client_min_messages = warning;\nBEGIN;\n${drop}`),
    after: Buffer.concat([Buffer.from(`\n${foreignKeys}`), viewsScript, Buffer.from('\nCOMMIT;\n')]),
  };
}

async function incomingForeignKeys(session: Session, tables: string[]): Promise<{ table: string; name: string; definition: string }[]> {
  // With an empty search_path, pg_get_constraintdef qualifies the referenced table, as the restore script needs.
  await session.client.query("BEGIN; SET LOCAL search_path TO ''");
  const result = await session.client.query<{ table: string; name: string; definition: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS table, k.conname AS name, pg_get_constraintdef(k.oid) AS definition
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE k.contype = 'f' AND k.confrelid = ANY (SELECT to_regclass(t) FROM unnest($1::text[]) t)
        AND NOT (k.conrelid = ANY (SELECT to_regclass(t) FROM unnest($1::text[]) t))
      ORDER BY 1, 2`,
    [tables],
  ).finally(() => session.client.query('COMMIT'));
  return result.rows;
}

/** Views and materialized views built on the tables, directly or through other views (DROP TABLE ... CASCADE drops them). */
async function dependentViews(session: Session, tables: string[]): Promise<string[]> {
  const result = await session.client.query<{ name: string }>(
    `WITH RECURSIVE restored AS (
       SELECT to_regclass(t) AS oid FROM unnest($1::text[]) t WHERE to_regclass(t) IS NOT NULL
     ), built_on (oid) AS (
       SELECT r.ev_class FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
        WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
          AND d.refobjid IN (SELECT oid FROM restored) AND r.ev_class <> d.refobjid
       UNION
       SELECT r.ev_class FROM built_on b JOIN pg_depend d ON d.refobjid = b.oid
         JOIN pg_rewrite r ON r.oid = d.objid
        WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND r.ev_class <> b.oid
     )
     SELECT format('%I.%I', n.nspname, c.relname) AS name
       FROM built_on b JOIN pg_class c ON c.oid = b.oid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('v', 'm') AND c.oid NOT IN (SELECT oid FROM restored)
      ORDER BY 1`,
    [tables],
  );
  return result.rows.map((r) => r.name);
}

/** Before anything is restored: the file is intact, and restoring it loses nothing it cannot put back. */
export async function ensureRestorable(session: Session, manifest: SnapshotManifest): Promise<void> {
  await ensureIntact(manifest);
  await ensureNothingLost(session, manifest);
}

async function ensureNothingLost(session: Session, manifest: SnapshotManifest): Promise<void> {
  const lost = manifest.scope === 'tables' ? await objectsLostByDrop(session, manifest.tables) : [];
  if (lost.length > 0) {
    throw new UsageError(
      `restoring the snapshot of ${manifest.unit} would drop what depends on its tables and is not restored with them: ${lost.join('; ')}`,
      { hint: 'nothing was restored; revert the unit with its rollback file (without --from-snapshot), or restore the snapshot by hand with pg_restore' },
    );
  }
}

/**
 * What DROP TABLE ... CASCADE would take with the tables besides their own parts, the foreign
 * keys pointing at them and the views built on them (which the restore recreates): functions
 * taking or returning their row type, columns of that type, policies and rules of other
 * tables that read them. The restore refuses rather than lose them.
 */
async function objectsLostByDrop(session: Session, tables: string[]): Promise<string[]> {
  const result = await session.client.query<{ what: string }>(
    `WITH restored AS (
       SELECT to_regclass(t) AS oid FROM unnest($1::text[]) t WHERE to_regclass(t) IS NOT NULL
     ), targets (classid, oid) AS (
       SELECT 'pg_class'::regclass, oid FROM restored
       UNION ALL
       SELECT 'pg_type'::regclass, c.reltype FROM pg_class c WHERE c.oid IN (SELECT oid FROM restored)
     )
     SELECT DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid) AS what
       FROM pg_depend d JOIN targets t ON d.refclassid = t.classid AND d.refobjid = t.oid
      WHERE d.deptype = 'n'
        AND NOT (d.classid = 'pg_class'::regclass AND d.objid IN (SELECT oid FROM restored))
        AND NOT (d.classid = 'pg_constraint'::regclass AND EXISTS (
              SELECT 1 FROM pg_constraint k WHERE k.oid = d.objid AND (k.contype = 'f' OR k.conrelid IN (SELECT oid FROM restored))))
        AND NOT (d.classid = 'pg_rewrite'::regclass AND EXISTS (
              SELECT 1 FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
               WHERE r.oid = d.objid AND (c.relkind IN ('v', 'm') OR c.oid IN (SELECT oid FROM restored))))
        AND NOT (d.classid = 'pg_policy'::regclass AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.oid = d.objid AND p.polrelid IN (SELECT oid FROM restored)))
        AND NOT (d.classid = 'pg_trigger'::regclass AND EXISTS (SELECT 1 FROM pg_trigger g WHERE g.oid = d.objid AND g.tgrelid IN (SELECT oid FROM restored)))
        AND NOT (d.classid = 'pg_attrdef'::regclass AND EXISTS (SELECT 1 FROM pg_attrdef a WHERE a.oid = d.objid AND a.adrelid IN (SELECT oid FROM restored)))
      ORDER BY 1`,
    [tables],
  );
  return result.rows.map((r) => r.what);
}

/** The views' definitions, comments, grants and owners as pg_dump writes them (materialized views with their REFRESH), as bytes. */
async function dumpViews(views: string[], env: NodeJS.ProcessEnv): Promise<Buffer> {
  const pgDump = findPgTool('pg_dump');
  if (!pgDump) throw new UsageError(`pg_dump is needed to keep the views built on the restored tables (${views.join(', ')})`, { hint: 'install the PostgreSQL client (e.g. `apt-get install -y postgresql-client`)' });
  return (await runTool({ path: pgDump.path, args: ['--no-password', ...views.flatMap((v) => ['-t', v])], env })).stdout;
}

async function existingTables(session: Session, tables: string[]): Promise<string[]> {
  const result = await session.client.query<{ name: string }>(
    `SELECT t AS name FROM unnest($1::text[]) t WHERE to_regclass(t) IS NOT NULL`,
    [tables],
  );
  return result.rows.map((r) => r.name);
}

export async function makePrivateDirectory(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  await chmod(path, 0o700);
  // The snapshot root too: it holds every run's dumps.
  await chmod(dirname(path), 0o700).catch(() => {});
}

async function restrictTree(path: string): Promise<void> {
  await chmod(path, 0o700);
  for (const f of await readdir(path)) await chmod(join(path, f), 0o600);
}

async function freeBytes(directory: string): Promise<number | undefined> {
  let dir = resolve(directory);
  for (;;) {
    try {
      const s = await statfs(dir);
      return s.bavail * s.bsize;
    } catch {
      const parent = dirname(dir);
      if (parent === dir) return undefined;
      dir = parent;
    }
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
