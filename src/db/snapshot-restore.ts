/** Restoring a unit's snapshot exactly, in one transaction (see snapshot.ts). */
import { UnitFailedError, UsageError } from '../errors.js';
import { restoresInPlace } from './citus.js';
import type { Session } from './connection.js';
import { findPgTool, libpqEnvironment, runTool, streamThrough, ToolError } from './pg-tools.js';
import { ensureIntact, type SnapshotManifest } from './snapshot.js';
import { withTransaction } from './transaction.js';

/**
 * Puts a unit's tables back exactly as the snapshot holds them, in one transaction: the
 * tables are dropped (with the foreign keys of other tables that point at them, and the
 * views and materialized views built on them), restored from the dump (definition, data,
 * indexes, constraints, triggers, policies, sequences), and those foreign keys and views
 * are created again as they were just before the restore (materialized views refreshed).
 * Tables Citus manages are not dropped: their rows are put back in place (rowsInPlace).
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
    throw new UsageError(`the snapshot of ${manifest.unit} holds only the schema, not the data`, {
      code: 'snapshot-schema-only',
      hint: 'revert the unit with its rollback file instead',
    });
  }
  const inPlace = await ensureRestorable(session, manifest);
  const pgRestore = findPgTool('pg_restore');
  const psql = findPgTool('psql');
  if (!pgRestore || !psql)
    throw new UsageError('pg_restore and psql are needed to restore a snapshot', {
      code: 'tool-missing',
      hint: 'install the PostgreSQL client (e.g. `apt-get install -y postgresql-client`)',
    });
  const env = libpqEnvironment(session.url);
  try {
    const plan =
      manifest.scope !== 'tables'
        ? aroundDatabase
        : inPlace
          ? await rowsInPlace(session, manifest.tables)
          : await aroundTables(session, manifest.tables, env);
    await streamThrough(
      { path: pgRestore.path, args: [...plan.restoreArgs, '-f', '-', manifest.file], env },
      { path: psql.path, args: ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], env },
      plan,
    );
  } catch (error) {
    if (!(error instanceof ToolError)) throw error;
    const what = manifest.scope === 'tables' ? manifest.tables.join(', ') : 'the whole database';
    throw new UnitFailedError(
      `restoring the snapshot of ${manifest.unit} (${what}) failed: ${error.summary}; it ran in one transaction, so nothing changed`,
      {
        code: 'restore-failed',
        details: error.message.split('\n'),
        hint: `nothing was restored: fix what the error names, then restore again. The snapshot file is ${manifest.file} (\`pg_restore -l\` lists what it holds)`,
      },
    );
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

/**
 * Tables Citus manages (citus.ts): their rows go back into the tables as they are, which
 * keeps their distribution. The foreign keys of other tables that point at them are dropped
 * first (TRUNCATE refuses them) and created again after, which checks them against the
 * restored rows; the rows are emptied and copied back by pg_restore --data-only (COPY
 * through the coordinator, which sends each row to its shard). Sequential mode keeps Citus
 * on one connection per worker, so the DDL after the COPY runs where the COPY wrote.
 */
async function rowsInPlace(session: Session, tables: string[]): Promise<RestorePlan> {
  const incoming = await incomingForeignKeys(session, tables);
  const dropForeignKeys = incoming.map((fk) => `ALTER TABLE ${fk.table} DROP CONSTRAINT ${quote(fk.name)};\n`).join('');
  const addForeignKeys = incoming.map((fk) => `ALTER TABLE ${fk.table} ADD CONSTRAINT ${quote(fk.name)} ${fk.definition};\n`).join('');
  return {
    restoreArgs: ['--data-only'],
    before: Buffer.from(
      `SET client_min_messages = warning;\nBEGIN;\nSET LOCAL citus.multi_shard_modify_mode TO 'sequential';\n${dropForeignKeys}TRUNCATE ${tables.join(', ')};\n`,
    ),
    after: Buffer.from(`\n${addForeignKeys}COMMIT;\n`),
  };
}

async function incomingForeignKeys(session: Session, tables: string[]): Promise<{ table: string; name: string; definition: string }[]> {
  // With an empty search_path, pg_get_constraintdef qualifies the referenced table, as the restore script needs.
  const result = await withTransaction(session.client, { readOnly: true }, async () => {
    await session.client.query("SET LOCAL search_path TO ''");
    return session.client.query<{ table: string; name: string; definition: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS table, k.conname AS name, pg_get_constraintdef(k.oid) AS definition
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE k.contype = 'f' AND k.confrelid = ANY (SELECT to_regclass(t) FROM unnest($1::text[]) t)
        AND NOT (k.conrelid = ANY (SELECT to_regclass(t) FROM unnest($1::text[]) t))
      ORDER BY 1, 2`,
      [tables],
    );
  });
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

/**
 * Before anything is restored: the file is intact, and restoring it loses nothing it cannot
 * put back. True when its tables are restored in place (Citus tables, see citus.ts).
 */
export async function ensureRestorable(session: Session, manifest: SnapshotManifest): Promise<boolean> {
  await ensureIntact(manifest);
  // In place, nothing is dropped: nothing can be lost with it.
  if (await restoresInPlace(session, manifest)) return true;
  await ensureNothingLost(session, manifest);
  return false;
}

async function ensureNothingLost(session: Session, manifest: SnapshotManifest): Promise<void> {
  const lost = manifest.scope === 'tables' ? await objectsLostByDrop(session, manifest.tables) : [];
  if (lost.length > 0) {
    throw new UsageError(
      `restoring the snapshot of ${manifest.unit} would drop what depends on its tables and is not restored with them: ${lost.join('; ')}`,
      {
        code: 'restore-would-drop',
        hint: 'nothing was restored; revert the unit with its rollback file (without --from-snapshot), or restore the snapshot by hand with pg_restore',
      },
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
  if (!pgDump)
    throw new UsageError(`pg_dump is needed to keep the views built on the restored tables (${views.join(', ')})`, {
      code: 'tool-missing',
      hint: 'install the PostgreSQL client (e.g. `apt-get install -y postgresql-client`)',
    });
  return (await runTool({ path: pgDump.path, args: ['--no-password', ...views.flatMap((v) => ['-t', v])], env })).stdout;
}

async function existingTables(session: Session, tables: string[]): Promise<string[]> {
  const result = await session.client.query<{ name: string }>(
    `SELECT t AS name FROM unnest($1::text[]) t WHERE to_regclass(t) IS NOT NULL`,
    [tables],
  );
  return result.rows.map((r) => r.name);
}

function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
