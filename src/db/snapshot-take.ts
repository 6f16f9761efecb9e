/** Taking a unit's snapshot with pg_dump before it runs, and the preflight that can refuse a run first (see snapshot.ts). */
import { chmod, mkdir, open, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createdRelations } from '../plan/created.js';
import { PlanError, UnitFailedError, UsageError } from '../errors.js';
import type { SnapshotScope, Unit } from '../plan/types.js';
import { citusTables, ensureCitusCanSnapshot, type CitusTable } from './citus.js';
import type { Session } from './connection.js';
import { findPgTool, libpqEnvironment, runTool } from './pg-tools.js';
import { fingerprint, type SnapshotManifest } from './snapshot.js';

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
  /** A table Citus manages (its bytes are its shards'). */
  citus?: CitusTable;
}

/** Whether the unit may need a snapshot, known without asking the database. */
export function mayNeedSnapshot(unit: Unit): boolean {
  const scope = unit.options.snapshot;
  return scope.kind === 'default' ? unit.writes.length > 0 : scope.kind !== 'none';
}

/**
 * What a unit's snapshot will hold, resolved against the database as it is now. `beforeBody`:
 * the unit is about to run, so a table it writes must be there (or be one it creates itself);
 * one that is not would leave the unit without the snapshot `plan` promised (the preflight,
 * before earlier units have run, does not ask).
 */
export async function resolveScope(
  session: Session,
  unit: Unit,
  beforeBody = false,
): Promise<{ scope: SnapshotManifest['scope']; tables: ResolvedTable[] } | undefined> {
  const scope: SnapshotScope = unit.options.snapshot;
  if (scope.kind === 'none') return undefined;
  if (scope.kind === 'schema' || scope.kind === 'full') return { scope: scope.kind, tables: [] };
  const names = scope.kind === 'tables' ? scope.tables : unit.writes;
  if (names.length === 0) return undefined;
  const found = await session.client.query<{ wanted: string; exists: boolean; name: string | null; bytes: number | null }>(
    `SELECT t.wanted, to_regclass(t.wanted) IS NOT NULL AS exists,
            CASE WHEN c.oid IS NOT NULL THEN format('%I.%I', n.nspname, c.relname) END AS name, pg_total_relation_size(c.oid) AS bytes
       FROM unnest($1::text[]) AS t (wanted)
       LEFT JOIN pg_class c ON c.oid = to_regclass(t.wanted) AND c.relkind IN ('r', 'p')
       LEFT JOIN pg_namespace n ON n.oid = c.relnamespace`,
    [names],
  );
  const missing = found.rows.filter((r) => r.name === null).map((r) => r.wanted);
  if (scope.kind === 'tables' && missing.length > 0) {
    throw new PlanError(
      `the snapshot directive names ${missing.length === 1 ? 'a table that does' : 'tables that do'} not exist: ${missing.join(', ')}`,
      {
        code: 'snapshot-table-missing',
        file: unit.file,
        line: scope.line,
        hint: 'fix the `-- tenantify:snapshot` line (or use none); nothing was run',
      },
    );
  }
  const notThere = found.rows.filter((r) => !r.exists);
  if (beforeBody && scope.kind === 'default' && notThere.length > 0) {
    // Asked only for a table not there yet: reading what the unit creates loads the SQL parser
    // (~0.1 s of CPU), which a run whose plan came from the split cache has not needed.
    const created = (await createdRelations(unit)).map((r) => r.name);
    const absent = notThere
      .filter((r) => !created.some((c) => c === r.wanted || c.endsWith(`.${r.wanted}`) || r.wanted.endsWith(`.${c}`)))
      .map((r) => r.wanted);
    if (absent.length > 0) {
      throw new UnitFailedError(
        `no snapshot can be taken of ${absent.join(', ')}, which ${absent.length === 1 ? 'it writes and does' : 'it writes and do'} not exist`,
        {
          code: 'snapshot-table-missing',
          hint: 'the unit was not run: check the table names it writes (as PostgreSQL stores them, quoted), name its tables with `-- tenantify:snapshot tables ...`, or use `-- tenantify:snapshot none`',
        },
      );
    }
  }
  const tables: ResolvedTable[] = [
    ...new Map(
      found.rows.filter((r) => r.name !== null).map((r) => [r.name as string, { name: r.name as string, bytes: Number(r.bytes ?? 0) }]),
    ).values(),
  ];
  const citus = await citusTables(
    session,
    tables.map((t) => t.name),
  );
  for (const table of tables) {
    const managed = citus[table.name];
    if (managed) Object.assign(table, { citus: managed, bytes: managed.bytes });
  }
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
    await ensureWritable(this.settings.directory);
    await ensureCitusCanSnapshot(this.session, units);
    this.pgDump = findPgTool('pg_dump');
    const serverMajor = Math.floor(this.session.serverVersion / 10000);
    if (!this.pgDump) {
      throw new UsageError('pg_dump was not found: tenantify takes a snapshot before each unit', {
        code: 'tool-missing',
        hint: 'install the PostgreSQL client (e.g. `apt-get install -y postgresql-client`), put pg_dump on PATH, or pass --no-snapshot to run without snapshots',
      });
    }
    if (this.pgDump.major < serverMajor) {
      throw new UsageError(`pg_dump ${this.pgDump.version} cannot dump this PostgreSQL ${serverMajor} server`, {
        code: 'tool-too-old',
        hint: `install pg_dump ${serverMajor} or newer and put it first on PATH, or pass --no-snapshot`,
      });
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
        {
          code: 'disk-full',
          hint: 'free some space, point snapshotDir in tenantify.config.json elsewhere, prune old ones (`tenantify snapshots prune --keep N`), or pass --no-snapshot',
        },
      );
    }
  }

  /** pg_dump of what the unit will write; `signal` stops it. A dump that failed leaves no file behind. */
  async take(unit: Unit, runId: number, signal?: AbortSignal): Promise<SnapshotManifest | undefined> {
    const resolved = await resolveScope(this.session, unit, true);
    if (!resolved) return undefined;
    const pgDump = this.pgDump ?? findPgTool('pg_dump');
    if (!pgDump)
      throw new UsageError('pg_dump was not found', { code: 'tool-missing', hint: 'install the PostgreSQL client or pass --no-snapshot' });
    const started = performance.now();
    const runDir = resolve(this.settings.directory, String(runId));
    await makePrivateDirectory(runDir);
    const bytesInAll = resolved.tables.reduce((sum, t) => sum + t.bytes, 0);
    const format: SnapshotManifest['format'] =
      resolved.scope === 'tables' && bytesInAll > this.settings.parallelAbove ? 'directory' : 'custom';
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
    try {
      await runTool({ path: pgDump.path, args, env: this.env, signal });
    } catch (error) {
      // A 0-byte or half-written .dump would pass for a snapshot: nothing is better.
      await rm(file, { recursive: true, force: true });
      throw error;
    }
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
      ...(resolved.tables.some((t) => t.citus)
        ? { citus: Object.fromEntries(resolved.tables.flatMap((t) => (t.citus ? [[t.name, t.citus]] : []))) }
        : {}),
    };
  }

  private async databaseSize(): Promise<number> {
    const result = await this.session.client.query<{ bytes: number }>('SELECT pg_database_size(current_database()) AS bytes');
    return Number(result.rows[0]?.bytes ?? 0);
  }
}

/** The snapshot directory can be made and written to, or a usage error says so before anything runs. */
async function ensureWritable(directory: string): Promise<void> {
  const probe = join(directory, `.tenantify-write-test-${process.pid}`);
  try {
    await mkdir(directory, { recursive: true, mode: 0o700 });
    await writeFile(probe, '');
    await rm(probe, { force: true });
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new UsageError(`the snapshot directory ${directory} cannot be written (${why})`, {
      code: 'snapshot-dir-unwritable',
      hint: 'point snapshotDir in tenantify.config.json at a directory this user can write, or pass --no-snapshot to run without snapshots',
    });
  }
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
