/**
 * What tenantify does differently on a Citus coordinator, in one place.
 *
 * On a coordinator, a distributed table is an empty shell whose rows live in shards on the
 * workers, described by Citus's metadata (pg_dist_partition); a reference table has a copy
 * on every node. Most of the executor needs nothing special: statements, verify queries,
 * batches and CREATE INDEX CONCURRENTLY go through the shell and Citus runs them on the
 * shards; a transaction that writes shards and the ledger (a plain table on the
 * coordinator) commits with two-phase commit, so a batch and its cursor stay together; the
 * run lock is an advisory lock of the coordinator. A unit's timeouts need one setting
 * (propagateLocalSettings) to reach the workers. Snapshots differ:
 *
 *  - Taking: pg_dump on the coordinator reads a Citus table's rows through Citus (COPY), so
 *    a table snapshot holds every shard's rows. The shell's size is ~0 bytes, so the size
 *    that sizes the snapshot is Citus's (citus_total_relation_size).
 *  - Restoring: the usual DROP TABLE and CREATE TABLE from the dump would leave a plain
 *    table on the coordinator, its distribution (or replication) gone. A Citus table is
 *    restored in place instead: its rows emptied and copied back, in one transaction
 *    (snapshot-restore.ts). That only gives back rows: the table must still exist with the
 *    columns it had, which is checked first; otherwise the restore refuses, and the unit's
 *    rollback file is the way back.
 *  - A whole-database snapshot (`-- tenantify:snapshot full`) cannot work: pg_restore
 *    --clean on a coordinator drops the Citus extension's objects and cannot put shards
 *    back. apply refuses it before anything runs.
 *
 * `rehearse --citus` compares the layout too (citusLayout): a rollback that leaves a table
 * distributed that was not, or colocated elsewhere, has not returned the database to where
 * it started, even when every row and column is back. A live coordinator it copies with
 * pg_dump arrives as plain tables; placeLike makes them Citus tables as the source has them.
 */
import { PlanError, UsageError } from '../errors.js';
import type pg from 'pg';
import type { Unit } from '../plan/types.js';
import type { Session } from './session.js';
import type { CitusTable, SnapshotManifest } from './snapshot.js';

/**
 * Every session on a server with Citus loaded (connection.ts) propagates its SET LOCAL
 * commands to the workers its transaction reaches: a unit's lock_timeout and
 * statement_timeout then hold on each shard too. Without it, a DDL statement waits on a
 * worker's lock (an application transaction reading a shard there) as long as that lock is
 * held, whatever the unit's lock timeout, which counts only waits on the coordinator, and
 * every query of that shard queues behind it. (A plain SET, outside a transaction, is not
 * propagated: a `transaction off` unit's timeouts hold on the coordinator only.)
 */
export const citusLoaded = "current_setting('citus.propagate_set_commands', true) IS NOT NULL";
export const propagateLocalSettings = "SET citus.propagate_set_commands TO 'local'";

export type { CitusTable } from './snapshot.js';

/** Whether the Citus extension is installed in this database. */
export async function hasCitus(client: pg.Client): Promise<boolean> {
  const result = await client.query<{ citus: boolean }>("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS citus");
  return Boolean(result.rows[0]?.citus);
}

/** Those of `tables` that Citus manages, by name as given (none without the extension). */
export async function citusTables(session: Session, tables: string[]): Promise<Record<string, CitusTable>> {
  if (tables.length === 0 || !(await hasCitus(session.client))) return {};
  // partmethod 'h' is hash-distributed; 'n' with repmodel 't' (on every node) a reference table, else a table on one node (Citus-local, or a distributed schema's).
  const result = await session.client.query<{ name: string; kind: CitusTable['kind']; columns: string[]; bytes: string }>(
    `SELECT t AS name,
            CASE WHEN p.partmethod = 'h' THEN 'distributed' WHEN p.repmodel = 't' THEN 'reference' ELSE 'local' END AS kind,
            ARRAY(SELECT format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)) FROM pg_attribute a
                   WHERE a.attrelid = p.logicalrelid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns,
            citus_total_relation_size(p.logicalrelid) AS bytes
       FROM unnest($1::text[]) t JOIN pg_dist_partition p ON p.logicalrelid = to_regclass(t)`,
    [tables],
  );
  return Object.fromEntries(result.rows.map((r) => [r.name, { kind: r.kind, columns: r.columns, bytes: Number(r.bytes) }]));
}

/**
 * The planner's estimate of a Citus table's rows, summed over its shards' statistics; undefined
 * for a table Citus does not manage (or without the extension). On a coordinator the table
 * itself is an empty shell whose reltuples stays 0, so reading only it would make a batched
 * backfill count every row of every shard before its first batch, whatever the table's size.
 */
export async function citusRowEstimate(session: Session, table: string): Promise<number | undefined> {
  if (!(await hasCitus(session.client))) return undefined;
  const result = await session.client.query<{ n: string | null }>(
    `SELECT (SELECT sum(greatest(s.result::float8, 0))::bigint
               FROM run_command_on_shards(p.logicalrelid, $$SELECT reltuples FROM pg_class WHERE oid = '%s'::regclass$$) s
              WHERE s.success) AS n
       FROM pg_dist_partition p WHERE p.logicalrelid = to_regclass($1)`,
    [table],
  );
  const row = result.rows[0];
  return row ? Number(row.n ?? 0) : undefined;
}

/**
 * A batched backfill of a distributed table runs its batches over one connection per worker:
 * each worker's shards one after another, on the connection Citus keeps from one transaction
 * to the next. Left to its default, a batch that touches every shard (a batch key other than
 * the distribution column, or a range of it: only equality routes a query to one shard) opens
 * up to 16 connections per worker for that one transaction, while Citus keeps only one per
 * worker afterwards (citus.max_cached_conns_per_worker): every batch paid for new
 * connections (a process forked on the worker for a few milliseconds of work) and prepared
 * its two-phase commit on each of them. bench/citus.ts: 293 ms a batch of 2,500 rows
 * against 81 ms. It also leaves the workers' other cores to the application. For the
 * backfill's sessions only; `restore` puts the setting back on a session that runs on.
 */
export const batchPoolSetting = 'citus.max_adaptive_executor_pool_size';

/** Whether `table` is a Citus distributed table (false without the extension). */
export async function isDistributed(session: Session, table: string): Promise<boolean> {
  if (!(await hasCitus(session.client))) return false;
  const result = await session.client.query<{ distributed: boolean }>(
    "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass($1) AND partmethod = 'h') AS distributed",
    [table],
  );
  return Boolean(result.rows[0]?.distributed);
}

/** One connection per worker for these sessions' distributed statements (see batchPoolSetting). */
export async function oneConnectionPerWorker(sessions: Session[]): Promise<void> {
  await Promise.all(sessions.map((s) => s.client.query(`SET ${batchPoolSetting} = 1`)));
}

/** The server's default again, for a session that runs the next units. */
export async function restoreConnectionsPerWorker(session: Session): Promise<void> {
  await session.client.query(`RESET ${batchPoolSetting}`);
}

/** Before anything runs: no unit asks for a snapshot that cannot work on a coordinator. */
export async function ensureCitusCanSnapshot(session: Session, units: Unit[]): Promise<void> {
  const full = units.filter((u) => u.options.snapshot.kind === 'full');
  if (full.length === 0 || !(await hasCitus(session.client))) return;
  const unit = full[0] as Unit;
  throw new PlanError(
    "`-- tenantify:snapshot full` cannot work on a Citus coordinator: pg_restore --clean of the whole database would drop the Citus extension's objects and cannot put the shards back on the workers",
    {
      code: 'citus-snapshot-full',
      file: unit.file,
      line: unit.options.snapshot.line,
      hint: `name the tables instead (\`-- tenantify:snapshot accounts,users\`: a Citus table is restored in place, its distribution kept), or none${
        full.length > 1
          ? ` (also in ${full
              .slice(1)
              .map((u) => u.file)
              .join(', ')})`
          : ''
      }; nothing was run`,
    },
  );
}

/**
 * How a snapshot of tables goes back: true when it holds Citus tables (or the database now
 * has Citus tables among them), restored in place. Refuses, before anything is restored,
 * when a table that was a Citus table is gone or no longer one, or its columns changed
 * since the snapshot.
 */
export async function restoresInPlace(session: Session, manifest: SnapshotManifest): Promise<boolean> {
  if (manifest.scope === 'full' && (await hasCitus(session.client))) {
    throw new UsageError(`the snapshot of ${manifest.unit} is of the whole database, which cannot be restored on a Citus coordinator`, {
      code: 'citus-restore-refused',
      hint: 'nothing was restored; revert the unit with its rollback file (without --from-snapshot)',
    });
  }
  if (manifest.scope !== 'tables') return false;
  const taken = manifest.citus ?? {};
  const now = await citusTables(session, manifest.tables);
  if (Object.keys(taken).length === 0 && Object.keys(now).length === 0) return false;
  const changed: string[] = [];
  // A plain table beside them goes back in place too (its COPY fails, and nothing changes, if it lost a column).
  for (const [table, before] of Object.entries(taken)) {
    const after = now[table];
    if (!after) changed.push(`${table} is no longer a Citus table (or is gone)`);
    else if (before.columns.join(', ') !== after.columns.join(', '))
      changed.push(`${table} had columns (${before.columns.join(', ')}), now (${after.columns.join(', ')})`);
  }
  if (changed.length > 0) {
    throw new UsageError(
      `the snapshot of ${manifest.unit} cannot be restored on this Citus coordinator: it puts rows back into tables as they are, and ${changed.join('; ')}`,
      {
        code: 'citus-restore-refused',
        hint: 'nothing was restored; revert the unit with its rollback file (without --from-snapshot), or restore the rows by hand from the snapshot file (`pg_restore --data-only`)',
      },
    );
  }
  return true;
}

/**
 * "citus public.accounts" → "distributed by org_id, 4 shards, colocated with public.accounts"
 * (a colocation group is named by its first table, its number being no more than an id), for
 * every table Citus manages; empty without Citus.
 */
export async function citusLayout(client: pg.Client): Promise<Map<string, string>> {
  const placements = await citusPlacements(client);
  const firstOfGroup = new Map<number, string>();
  for (const p of placements) {
    const first = firstOfGroup.get(p.group);
    if (first === undefined || p.table < first) firstOfGroup.set(p.group, p.table);
  }
  const describe = (p: CitusPlacement): string =>
    p.kind === 'distributed'
      ? `distributed by ${p.column}, ${p.shards} shards, colocated with ${firstOfGroup.get(p.group)}`
      : p.kind === 'reference'
        ? 'reference table'
        : "on one node (Citus-local, or a distributed schema's)";
  return new Map(placements.map((p) => [`citus ${p.table}`, describe(p)]));
}

/** How a source coordinator holds a table, to hold it the same way in a copy (rehearse --citus of a live source). */
export interface CitusPlacement {
  table: string;
  kind: CitusTable['kind'];
  /** Distributed tables: the distribution column, the shard count, and the colocation group. */
  column: string | null;
  shards: number;
  group: number;
}

export async function citusPlacements(client: pg.Client): Promise<CitusPlacement[]> {
  if (!(await hasCitus(client))) return [];
  const result = await client.query<CitusPlacement>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS table,
            CASE WHEN p.partmethod = 'h' THEN 'distributed' WHEN p.repmodel = 't' THEN 'reference' ELSE 'local' END AS kind,
            CASE WHEN p.partmethod = 'h' THEN column_to_column_name(p.logicalrelid, p.partkey) END AS column,
            (SELECT count(*)::int FROM pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid) AS shards, p.colocationid AS group
       FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      ORDER BY 2 DESC, 5, 1`,
  );
  return result.rows;
}

/**
 * pg_dump copies a coordinator's tables as plain tables: this makes them Citus tables in the
 * copy as the source has them (reference tables, then Citus-local ones, then each colocation
 * group, its first table with the source's shard count and the others colocated with it).
 * Citus refuses to distribute a table that a plain table references, and a table that
 * references one not distributed yet: the foreign keys touching these tables are dropped
 * first and created again once every table is placed (which checks them).
 */
export async function placeLike(client: pg.Client, placements: CitusPlacement[]): Promise<void> {
  const tables = placements.map((p) => p.table);
  // With an empty search_path, pg_get_constraintdef qualifies the referenced table.
  await client.query("SET search_path TO ''");
  const foreignKeys = await client.query<{ table: string; name: string; definition: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS table, format('%I', k.conname) AS name, pg_get_constraintdef(k.oid) AS definition
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE k.contype = 'f' AND (k.conrelid = ANY ($1::text[]::regclass[]) OR k.confrelid = ANY ($1::text[]::regclass[]))
      ORDER BY 1, 2`,
    [tables],
  );
  for (const fk of foreignKeys.rows) await client.query(`ALTER TABLE ${fk.table} DROP CONSTRAINT ${fk.name}`);
  const firstOfGroup = new Map<number, string>();
  for (const placement of placements) {
    try {
      if (placement.kind === 'reference') await client.query('SELECT create_reference_table($1)', [placement.table]);
      else if (placement.kind === 'local') await client.query('SELECT citus_add_local_table_to_metadata($1)', [placement.table]);
      else {
        const first = firstOfGroup.get(placement.group);
        if (first)
          await client.query('SELECT create_distributed_table($1, $2, colocate_with => $3)', [placement.table, placement.column, first]);
        else
          await client.query("SELECT create_distributed_table($1, $2, colocate_with => 'none', shard_count => $3::int)", [
            placement.table,
            placement.column,
            placement.shards,
          ]);
        firstOfGroup.set(placement.group, first ?? placement.table);
      }
    } catch (error) {
      throw new Error(`copying the source's Citus layout failed at ${placement.table} (${placement.kind}): ${(error as Error).message}`);
    }
  }
  for (const fk of foreignKeys.rows) await client.query(`ALTER TABLE ${fk.table} ADD CONSTRAINT ${fk.name} ${fk.definition}`);
}
