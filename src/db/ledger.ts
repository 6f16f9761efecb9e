/**
 * The ledger, in the target database (schema `tenantify` unless configured): runs, the
 * current state of every unit, and an append-only history of events. The `units` table is
 * the state an executor resumes from; `events` is what an on-call engineer reads to
 * reconstruct what happened, and a trigger refuses any UPDATE or DELETE on it.
 */
import { hostname } from 'node:os';
import { sql, type ColumnType, type Generated, type Kysely, type RawBuilder } from 'kysely';
import pg from 'pg';
import { UsageError } from '../errors.js';
import type { UnitKind, UnitStatus } from '../plan/types.js';
import type { LedgerError, LedgerUnit, UnitProgress } from '../plan/ledger-rows.js';
import { toolVersion } from '../version.js';

export const ledgerVersion = 2;

/** The name of the column the `applied` transition returns: the unit's duration in ms, on the server's clock. */
export const appliedResultName = 'tenantify_applied_ms';

export type { LedgerError, LedgerUnit, UnitProgress } from '../plan/ledger-rows.js';

export interface LedgerRun {
  id: number;
  command: string;
  dbUser: string;
  clientHost: string;
  clientPid: number;
  backendPid: number;
  toolVersion: string;
  startedAt: Date;
  finishedAt: Date | null;
  outcome: string | null;
  exitCode: number | null;
}

/**
 * The ledger's tables as Kysely sees them, in the ledger's schema (a Ledger queries them
 * `withSchema`). Columns the server fills (serials, defaults, `clock_timestamp()`) are
 * Generated; jsonb columns read as parsed values and are written as JSON text, cast by the
 * server. int8 columns read as numbers: connection.ts parses them so (ids stay far below 2^53).
 */
export interface LedgerDatabase {
  meta: MetaTable;
  runs: RunsTable;
  units: UnitsTable;
  events: EventsTable;
}

/** A jsonb column with a default: the parsed value on select, JSON text on insert (or none) and update. */
type JsonbWithDefault<T> = ColumnType<T, string | undefined, string>;
/** A nullable jsonb column: the parsed value or null on select, JSON text or null on insert and update. */
type NullableJsonb<T> = ColumnType<T | null, string | null, string | null>;

export interface MetaTable {
  key: string;
  value: string;
}

export interface RunsTable {
  id: Generated<number>;
  command: string;
  options: JsonbWithDefault<Record<string, unknown>>;
  db_user: Generated<string>;
  client_host: string;
  client_pid: number;
  backend_pid: Generated<number>;
  tool_version: string;
  started_at: Generated<Date>;
  finished_at: Date | null;
  outcome: string | null;
  exit_code: number | null;
}

export interface UnitsTable {
  id: string;
  kind: UnitKind;
  file: string;
  status: UnitStatus;
  checksum: string;
  /** Since ledger version 2: a ledger of version 1 has no such column until it is upgraded. */
  fingerprint: string | null;
  run_id: number | null;
  started_at: Date | null;
  applied_at: Date | null;
  duration_ms: number | null;
  progress: JsonbWithDefault<UnitProgress>;
  verify_checks: JsonbWithDefault<{ name: string; sql: string }[]>;
  verify_results: NullableJsonb<unknown>;
  snapshot: NullableJsonb<unknown>;
  error: NullableJsonb<LedgerError>;
  updated_at: Generated<Date>;
}

export interface EventsTable {
  id: Generated<number>;
  run_id: number | null;
  unit_id: string | null;
  at: Generated<Date>;
  event: string;
  detail: JsonbWithDefault<Record<string, unknown>>;
}

export interface LedgerEvent {
  id: number;
  runId: number | null;
  unitId: string | null;
  at: Date;
  event: string;
  detail: Record<string, unknown>;
}

export interface LedgerState {
  exists: boolean;
  version: number | undefined;
  units: LedgerUnit[];
  lastRun: LedgerRun | undefined;
}

export class Ledger {
  /** The ledger's statements for messages (see transitionText) by their text, and whether this session has them. */
  private readonly prepared = new Map<string, { name: string; ready: boolean }>();

  /**
   * The ledger's tables in its schema, for the statements Kysely builds. A unit's
   * transitions, progress and snapshot stay `sql` templates compiled on `db`: each is one
   * statement over units and events, and a message carries it as the EXECUTE of a statement
   * prepared once (transitionText), whose text must not move.
   */
  private readonly tables: Kysely<LedgerDatabase>;

  constructor(
    readonly db: Kysely<LedgerDatabase>,
    readonly schema: string,
  ) {
    this.tables = db.withSchema(schema);
  }

  private t(name: keyof LedgerDatabase): RawBuilder<unknown> {
    return sql.table(`${this.schema}.${name}`);
  }

  async exists(): Promise<number | undefined> {
    const found = await sql<{ present: boolean }>`SELECT to_regclass(${`${quoteIdent(this.schema)}.meta`}) IS NOT NULL AS present`.execute(
      this.db,
    );
    if (!found.rows[0]?.present) return undefined;
    const version = await this.tables.selectFrom('meta').select('value').where('key', '=', 'ledger_version').executeTakeFirst();
    return Number(version?.value ?? 0);
  }

  /**
   * Creates or upgrades the ledger. Call it while holding the run lock; `known` is the
   * version a read under the same lock found (undefined: none), which saves reading it again.
   */
  async ensure(known?: { version: number | undefined }): Promise<void> {
    const version = known ? known.version : await this.exists();
    if (version !== undefined && version > ledgerVersion) {
      throw new UsageError(
        `the ledger in schema "${this.schema}" has version ${version}, newer than this tenantify understands (${ledgerVersion})`,
        { code: 'ledger-too-new', hint: 'upgrade tenantify; an older release must not write a newer ledger' },
      );
    }
    if (version === ledgerVersion) return;
    // One simple-query message runs atomically, and joins a dry run's outer transaction if there is one.
    const statements = version === undefined ? ledgerDdl(this.schema) : ledgerUpgrade(this.schema, version);
    await sql.raw(statements.join(';\n')).execute(this.db);
  }

  async read(): Promise<LedgerState> {
    const version = await this.exists();
    if (version === undefined) return { exists: false, version: undefined, units: [], lastRun: undefined };
    // A ledger of version 1, not upgraded yet (a read-only command, or before `ensure`), has no fingerprints.
    const fingerprint = version >= 2 ? sql.ref<string | null>('fingerprint') : sql<null>`NULL`;
    const units = await this.tables
      .selectFrom('units')
      .select([
        'id',
        'kind',
        'file',
        'status',
        'checksum',
        fingerprint.as('fingerprint'),
        'run_id as runId',
        'started_at as startedAt',
        'applied_at as appliedAt',
        'duration_ms as durationMs',
      ])
      .select([
        'progress',
        'verify_checks as verifyChecks',
        'verify_results as verifyResults',
        'snapshot',
        'error',
        'updated_at as updatedAt',
      ])
      .orderBy('id')
      .execute();
    const lastRun = await this.tables.selectFrom('runs').select(runColumns).orderBy('id', 'desc').limit(1).executeTakeFirst();
    return { exists: true, version, units, lastRun };
  }

  async run(id: number): Promise<LedgerRun | undefined> {
    return this.tables.selectFrom('runs').select(runColumns).where('id', '=', id).executeTakeFirst();
  }

  /** The unfinished run served by this backend, if the ledger has it. */
  async runOfBackend(backendPid: number): Promise<LedgerRun | undefined> {
    return this.tables
      .selectFrom('runs')
      .select(runColumns)
      .where('backend_pid', '=', backendPid)
      .where('finished_at', 'is', null)
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
  }

  async startRun(command: string, options: Record<string, unknown>): Promise<number> {
    const run = await this.tables
      .insertInto('runs')
      .values({ command, options: JSON.stringify(options), client_host: hostname(), client_pid: process.pid, tool_version: toolVersion() })
      .returning('id')
      .executeTakeFirstOrThrow();
    return run.id;
  }

  async finishRun(runId: number, outcome: string, exitCode: number): Promise<void> {
    await this.tables.updateTable('runs').set({ finished_at: now, outcome, exit_code: exitCode }).where('id', '=', runId).execute();
  }

  /** Runs that never finished and whose backend is gone: they died (kill -9, lost laptop...). */
  async closeDeadRuns(currentRunId: number): Promise<LedgerRun[]> {
    return this.tables
      .updateTable('runs as r')
      .set({ finished_at: now, outcome: 'died' })
      .where('r.finished_at', 'is', null)
      .where('r.id', '<>', currentRunId)
      .where(sql<boolean>`NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.backend_pid AND a.backend_start <= r.started_at)`)
      .returning(runColumns)
      .execute();
  }

  /**
   * The run was stopped by a second signal and its sessions ended: its units still
   * `running` (their work rolled back by the server, or stopped between statements with
   * their progress kept) become `failed`, interrupted, and the run is finished. From
   * another connection, once the run's sessions are gone.
   */
  async interruptRun(runId: number, signal: string): Promise<string[]> {
    const error = JSON.stringify({ message: `interrupted by ${signal}`, code: 'interrupted' });
    const result = await sql<{ id: string }>`
      WITH state AS (
        UPDATE ${this.t('units')} SET status = 'failed', error = ${error}::jsonb, updated_at = clock_timestamp()
         WHERE run_id = ${runId} AND status = 'running'
        RETURNING id, checksum
      ), logged AS (
        INSERT INTO ${this.t('events')} (run_id, unit_id, event, detail)
        SELECT ${runId}, id, 'interrupted', jsonb_build_object('status', 'failed', 'checksum', checksum, 'error', ${error}::jsonb) FROM state
      ), finished AS (
        UPDATE ${this.t('runs')} SET finished_at = clock_timestamp(), outcome = 'interrupted', exit_code = 130
         WHERE id = ${runId} AND finished_at IS NULL
      )
      SELECT id FROM state`.execute(this.db);
    return result.rows.map((r) => r.id);
  }

  async event(runId: number | null, unitId: string | null, event: string, detail: Record<string, unknown> = {}): Promise<void> {
    await this.tables
      .insertInto('events')
      .values({ run_id: runId, unit_id: unitId, event, detail: JSON.stringify(detail) })
      .execute();
  }

  /**
   * Moves a unit to a new state and appends the matching event, in one statement (so in
   * whatever transaction the caller is in).
   */
  async transition(change: UnitTransition): Promise<void> {
    await this.transitionQuery(change).execute(this.db);
  }

  /**
   * The same statement as text to travel inside a multi-statement message (which takes no
   * parameters): `EXECUTE` of a statement this session prepares once, with the values as
   * literals. Parsing, analysing and planning the ledger's statements anew for every unit
   * cost the server more than a third of a small unit's own DDL; executing a prepared one
   * costs a little more than half of that. Call `prepare()` before sending the message.
   */
  transitionText(change: UnitTransition): string {
    return this.asText(this.transitionQuery(change));
  }

  private asText(query: RawBuilder<unknown>): string {
    const { sql: text, parameters } = query.compile(this.db);
    let statement = this.prepared.get(text);
    if (!statement) {
      statement = { name: `${preparedPrefix}${this.prepared.size + 1}`, ready: false };
      this.prepared.set(text, statement);
    }
    return parameters.length === 0 ? `EXECUTE ${statement.name}` : `EXECUTE ${statement.name}(${parameters.map(literal).join(', ')})`;
  }

  /**
   * Prepares the statements that texts of transitionText and saveSnapshotText execute and
   * the session does not have yet: call it before sending them. In a message of their own:
   * the server keeps a prepared statement's whole message as its text, and copies it at
   * every EXECUTE.
   */
  async prepare(): Promise<void> {
    const pending = [...this.prepared].filter(([, statement]) => !statement.ready);
    if (pending.length === 0) return;
    const text = pending.map(([query, statement]) => `PREPARE ${statement.name} AS ${query}`).join('\n;\n');
    await sql.raw(`/* tenantify: the ledger's statements */ ${text}`).execute(this.db);
    for (const [, statement] of pending) statement.ready = true;
  }

  /**
   * After a message failed: a unit may have dropped the prepared statements (DEALLOCATE,
   * DISCARD), or the failure was theirs. The server says which are there; `prepare()`
   * prepares the rest again.
   */
  async recheckPrepared(): Promise<void> {
    if (this.prepared.size === 0) return;
    const { rows } = await sql<{
      name: string;
    }>`SELECT name FROM pg_prepared_statements WHERE left(name, ${preparedPrefix.length}) = ${preparedPrefix}`.execute(this.db);
    const present = new Set(rows.map((r) => r.name));
    for (const statement of this.prepared.values()) statement.ready = present.has(statement.name);
  }

  private transitionQuery(change: UnitTransition): RawBuilder<unknown> {
    if (change.status === 'applied') return this.appliedQuery(change);
    const { runId, unit, status } = change;
    const progress = change.progress === undefined ? null : JSON.stringify(change.progress);
    const verifyChecks = change.verifyChecks === undefined ? null : JSON.stringify(change.verifyChecks);
    const verifyResults = change.verifyResults === undefined ? null : JSON.stringify(change.verifyResults);
    const snapshot = change.snapshot === undefined ? null : JSON.stringify(change.snapshot);
    const error = change.error === undefined ? null : JSON.stringify(change.error);
    const started = status === 'running' && change.fresh === true;
    const duration = typeof change.durationMs === 'number' ? change.durationMs : null;
    // A unit the ledger has no row of yet (the run holds the lock, so none appears meanwhile)
    // is a plain INSERT, cheaper for the server than the upsert; a row there after all fails it.
    const onConflict = change.firstRecord
      ? sql``
      : sql`
        ON CONFLICT (id) DO UPDATE SET
          kind = EXCLUDED.kind, file = EXCLUDED.file, status = EXCLUDED.status, checksum = EXCLUDED.checksum,
          fingerprint = EXCLUDED.fingerprint, run_id = EXCLUDED.run_id,
          started_at = CASE WHEN ${started} THEN clock_timestamp() ELSE u.started_at END,
          applied_at = CASE WHEN EXCLUDED.status IN ('rolled_back', 'pending') THEN NULL ELSE u.applied_at END,
          duration_ms = coalesce(EXCLUDED.duration_ms, u.duration_ms),
          progress = coalesce(${progress}::jsonb, u.progress),
          verify_checks = coalesce(${verifyChecks}::jsonb, u.verify_checks),
          verify_results = coalesce(${verifyResults}::jsonb, u.verify_results),
          snapshot = coalesce(${snapshot}::jsonb, u.snapshot),
          error = CASE WHEN EXCLUDED.status = 'failed' THEN EXCLUDED.error ELSE coalesce(EXCLUDED.error, u.error) END,
          updated_at = clock_timestamp()`;
    return sql`
      WITH state AS (
        INSERT INTO ${this.t('units')} AS u (id, kind, file, status, checksum, fingerprint, run_id, started_at, applied_at, duration_ms,
                                             progress, verify_checks, verify_results, snapshot, error, updated_at)
        VALUES (${unit.id}, ${unit.kind}, ${unit.file}, ${status}, ${unit.checksum}, ${unit.fingerprint ?? null}, ${runId},
                clock_timestamp(), NULL, ${duration}::int,
                coalesce(${progress}::jsonb, '{}'), coalesce(${verifyChecks}::jsonb, '[]'), ${verifyResults}::jsonb,
                ${snapshot}::jsonb, ${error}::jsonb, clock_timestamp())
        ${onConflict}
        RETURNING id
      )
      ${this.eventOf(change)}
    `;
  }

  /** The event of a unit's transition, inserted for the row its statement's `state` returns. */
  private eventOf(change: UnitTransition): RawBuilder<unknown> {
    const { runId, unit, status, event, detail = {} } = change;
    return sql`INSERT INTO ${this.t('events')} (run_id, unit_id, event, detail)
      SELECT ${runId}, id, ${event}, ${JSON.stringify({ status, checksum: unit.checksum, ...detail, ...(change.error ? { error: change.error } : {}) })}::jsonb FROM state`;
  }

  /**
   * A unit becomes applied only after its `running` transition committed, so its row is
   * there to update: a plain UPDATE, cheaper for the server than the upsert, most of all
   * right after a unit's DDL. Returns the unit's duration (the caller of a message of
   * several units learns each one's from it).
   */
  private appliedQuery(change: UnitTransition): RawBuilder<unknown> {
    const { runId, unit } = change;
    const json = (value: unknown): RawBuilder<unknown> | null => (value === undefined ? null : sql`${JSON.stringify(value)}::jsonb`);
    const keep = (column: string, value: unknown): RawBuilder<unknown> => json(value) ?? sql.ref(column);
    const duration =
      change.durationMs === 'since-start'
        ? sql`round(extract(epoch FROM clock_timestamp() - started_at) * 1000)::int`
        : change.durationMs === undefined
          ? sql.ref('duration_ms')
          : sql`${change.durationMs}::int`;
    return sql`
      WITH state AS (
        UPDATE ${this.t('units')} SET
          kind = ${unit.kind}, file = ${unit.file}, status = 'applied', checksum = ${unit.checksum},
          fingerprint = ${unit.fingerprint ?? null}, run_id = ${runId},
          applied_at = clock_timestamp(), duration_ms = ${duration},
          progress = ${keep('progress', change.progress)}, verify_checks = ${keep('verify_checks', change.verifyChecks)},
          verify_results = ${keep('verify_results', change.verifyResults)}, snapshot = ${keep('snapshot', change.snapshot)},
          error = NULL, updated_at = clock_timestamp()
        WHERE id = ${unit.id}
        RETURNING id, duration_ms
      )
      ${this.eventOf(change)}
      RETURNING (SELECT duration_ms FROM state) AS ${sql.raw(appliedResultName)}
    `;
  }

  /** A batch's or statement's progress; called inside the batch's transaction, or right after a statement. */
  async saveProgress(
    runId: number,
    unitId: string,
    progress: UnitProgress,
    event?: { name: string; detail: Record<string, unknown> },
  ): Promise<void> {
    if (event) {
      await sql`
        WITH state AS (UPDATE ${this.t('units')} SET progress = ${JSON.stringify(progress)}::jsonb, updated_at = clock_timestamp() WHERE id = ${unitId} RETURNING id)
        INSERT INTO ${this.t('events')} (run_id, unit_id, event, detail) SELECT ${runId}, id, ${event.name}, ${JSON.stringify(event.detail)}::jsonb FROM state`.execute(
        this.db,
      );
    } else {
      await sql`UPDATE ${this.t('units')} SET progress = ${JSON.stringify(progress)}::jsonb, updated_at = clock_timestamp() WHERE id = ${unitId}`.execute(
        this.db,
      );
    }
  }

  /** A snapshot was taken before the unit: the manifest goes with the unit and into the history. */
  async saveSnapshot(
    runId: number,
    unitId: string,
    manifest: Record<string, unknown> | null,
    event: string,
    detail: Record<string, unknown> = {},
  ): Promise<void> {
    await this.snapshotQuery(runId, unitId, manifest, event, detail).execute(this.db);
  }

  /** The same as SQL text, to travel inside a multi-statement message. */
  saveSnapshotText(
    runId: number,
    unitId: string,
    manifest: Record<string, unknown> | null,
    event: string,
    detail: Record<string, unknown> = {},
  ): string {
    return this.asText(this.snapshotQuery(runId, unitId, manifest, event, detail));
  }

  private snapshotQuery(
    runId: number,
    unitId: string,
    manifest: Record<string, unknown> | null,
    event: string,
    detail: Record<string, unknown>,
  ): RawBuilder<unknown> {
    return sql`
      WITH state AS (UPDATE ${this.t('units')} SET snapshot = ${manifest === null ? null : JSON.stringify(manifest)}::jsonb, updated_at = clock_timestamp() WHERE id = ${unitId} RETURNING id)
      INSERT INTO ${this.t('events')} (run_id, unit_id, event, detail) SELECT ${runId}, id, ${event}, ${JSON.stringify({ ...detail, ...(manifest ?? {}) })}::jsonb FROM state`;
  }

  /** This run's rows of these units: their status and duration. */
  async unitsOfRun(runId: number, unitIds: string[]): Promise<Map<string, { status: UnitStatus; durationMs: number | null }>> {
    const rows = await this.tables
      .selectFrom('units')
      .select(['id', 'status', 'duration_ms as durationMs'])
      .where('run_id', '=', runId)
      .where((eb) => eb('id', '=', eb.fn.any(eb.val(unitIds))))
      .execute();
    return new Map(rows.map(({ id, ...state }) => [id, state]));
  }

  /** A batch of segment `index` committed: its cursor and the unit's counts move on, atomically, whichever worker writes. */
  async advanceSegment(unitId: string, index: number, cursor: string, rows: number): Promise<void> {
    await sql`
      UPDATE ${this.t('units')} SET updated_at = clock_timestamp(), progress = jsonb_set(jsonb_set(jsonb_set(progress,
          ARRAY['segments', ${String(index)}, 'cursor'], to_jsonb(${cursor}::text)),
          '{rowsDone}', to_jsonb(coalesce((progress->>'rowsDone')::bigint, 0) + ${rows}::bigint)),
          '{batches}', to_jsonb(coalesce((progress->>'batches')::bigint, 0) + 1))
       WHERE id = ${unitId}`.execute(this.db);
  }

  /**
   * `repair`: an applied unit's file, edited on purpose, becomes what the ledger holds (its
   * checksum and verify queries), in one statement with the `repaired` event that keeps what
   * was there before, who, from where and why. Undefined when the unit is not applied.
   */
  async repairUnit(
    runId: number,
    unit: { id: string; file: string; checksum: string; fingerprint?: string | undefined },
    verifyChecks: { name: string; sql: string }[],
    reason: string,
  ): Promise<{ previousChecksum: string; at: Date; user: string } | undefined> {
    // A ledger of an older version gets the fingerprint column first (the caller holds the run lock).
    await this.ensure();
    const result = await sql<{ previousChecksum: string; at: Date; user: string }>`
      WITH before AS (
        SELECT id, checksum, fingerprint, file, verify_checks FROM ${this.t('units')} WHERE id = ${unit.id} AND status = 'applied' FOR UPDATE
      ), state AS (
        UPDATE ${this.t('units')} u SET checksum = ${unit.checksum}, fingerprint = ${unit.fingerprint ?? null}, file = ${unit.file}, verify_checks = ${JSON.stringify(verifyChecks)}::jsonb, updated_at = clock_timestamp()
          FROM before WHERE u.id = before.id
        RETURNING u.id
      ), event AS (
        INSERT INTO ${this.t('events')} (run_id, unit_id, event, detail)
        SELECT ${runId}, before.id, 'repaired', jsonb_build_object(
                 'reason', ${reason}::text, 'user', current_user, 'host', ${hostname()}::text, 'clientPid', ${process.pid}::int,
                 'previous', jsonb_build_object('checksum', before.checksum, 'fingerprint', before.fingerprint, 'file', before.file, 'verifyChecks', before.verify_checks),
                 'checksum', ${unit.checksum}::text, 'file', ${unit.file}::text, 'verifyChecks', ${JSON.stringify(verifyChecks)}::jsonb)
          FROM before JOIN state USING (id)
        RETURNING at
      )
      SELECT before.checksum AS "previousChecksum", (SELECT at FROM event) AS at, current_user AS "user" FROM before`.execute(this.db);
    return result.rows[0];
  }

  async events(unitId?: string, limit = 50): Promise<LedgerEvent[]> {
    let query = this.tables
      .selectFrom('events')
      .select(['id', 'run_id as runId', 'unit_id as unitId', 'at', 'event', 'detail'])
      .orderBy('id', 'desc')
      .limit(limit);
    if (unitId !== undefined) query = query.where('unit_id', '=', unitId);
    return query.execute();
  }
}

export interface UnitTransition {
  runId: number;
  unit: { id: string; kind: UnitKind; file: string; checksum: string; fingerprint?: string | undefined };
  status: UnitStatus;
  event: string;
  /** A new attempt starts now (resets started_at). */
  fresh?: boolean;
  /** The ledger has no row of the unit yet. */
  firstRecord?: boolean;
  /** The unit's duration; 'since-start': the server's clock since the unit's `running` transition. */
  durationMs?: number | 'since-start';
  progress?: UnitProgress;
  verifyChecks?: { name: string; sql: string }[];
  verifyResults?: unknown;
  snapshot?: unknown;
  error?: LedgerError;
  detail?: Record<string, unknown>;
}

/** A LedgerRun's columns of `runs`. */
const runColumns = [
  'id',
  'command',
  'db_user as dbUser',
  'client_host as clientHost',
  'client_pid as clientPid',
  'backend_pid as backendPid',
  'tool_version as toolVersion',
  'started_at as startedAt',
  'finished_at as finishedAt',
  'outcome',
  'exit_code as exitCode',
] as const;

/** The server's clock as a column's value, as the ledger's DDL defaults take it. */
const now = sql<Date>`clock_timestamp()`;

/** The names of the ledger's prepared statements (see Ledger.transitionText), lower case as the server keeps them. */
const preparedPrefix = 'tenantify_ledger_';

const { escapeLiteral } = pg;

/** A value of the ledger's own statements (a string, number, boolean or null) as an SQL literal, for EXECUTE. */
export function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string') return escapeLiteral(value);
  throw new Error(`cannot inline a ${typeof value} into a ledger statement`);
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * An existing ledger of an older version, upgraded in place to this one, each version's
 * step in turn: 2 records each unit's statements fingerprint beside its checksum (rows of
 * before keep none: for them any edit of the file is drift, as it was).
 */
function ledgerUpgrade(schema: string, from: number): string[] {
  const s = quoteIdent(schema);
  const steps: Record<number, string[]> = {
    2: [`ALTER TABLE ${s}.units ADD COLUMN IF NOT EXISTS fingerprint text`],
  };
  const statements: string[] = [];
  for (let version = from + 1; version <= ledgerVersion; version++) statements.push(...(steps[version] ?? []));
  statements.push(`UPDATE ${s}.meta SET value = '${ledgerVersion}' WHERE key = 'ledger_version'`);
  return statements;
}

function ledgerDdl(schema: string): string[] {
  const s = quoteIdent(schema);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${s}`,
    `CREATE TABLE ${s}.meta (key text PRIMARY KEY, value text NOT NULL)`,
    `INSERT INTO ${s}.meta (key, value) VALUES ('ledger_version', '${ledgerVersion}')`,
    `CREATE TABLE ${s}.runs (
       id bigserial PRIMARY KEY,
       command text NOT NULL,
       options jsonb NOT NULL DEFAULT '{}',
       db_user text NOT NULL DEFAULT current_user,
       client_host text NOT NULL,
       client_pid integer NOT NULL,
       backend_pid integer NOT NULL DEFAULT pg_backend_pid(),
       tool_version text NOT NULL,
       started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
       finished_at timestamptz,
       outcome text,
       exit_code integer)`,
    `CREATE TABLE ${s}.units (
       id text PRIMARY KEY,
       kind text NOT NULL CHECK (kind IN ('migration', 'backfill')),
       file text NOT NULL,
       status text NOT NULL CHECK (status IN ('pending', 'running', 'applied', 'failed', 'rolled_back')),
       checksum text NOT NULL,
       fingerprint text,
       run_id bigint REFERENCES ${s}.runs (id),
       started_at timestamptz,
       applied_at timestamptz,
       duration_ms integer,
       progress jsonb NOT NULL DEFAULT '{}',
       verify_checks jsonb NOT NULL DEFAULT '[]',
       verify_results jsonb,
       snapshot jsonb,
       error jsonb,
       updated_at timestamptz NOT NULL DEFAULT clock_timestamp())`,
    `CREATE TABLE ${s}.events (
       id bigserial PRIMARY KEY,
       run_id bigint REFERENCES ${s}.runs (id),
       unit_id text,
       at timestamptz NOT NULL DEFAULT clock_timestamp(),
       event text NOT NULL,
       detail jsonb NOT NULL DEFAULT '{}')`,
    `CREATE INDEX events_unit_idx ON ${s}.events (unit_id, id)`,
    `CREATE FUNCTION ${s}.events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'the tenantify ledger history is append-only'; END $$`,
    `CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON ${s}.events
       FOR EACH ROW EXECUTE FUNCTION ${s}.events_append_only()`,
  ];
}
