/**
 * Connections. A Session is one pg client plus a Kysely bound to that same client, so the
 * ledger, TypeScript units and raw statements all share the unit's transaction.
 */
import { hostname } from 'node:os';
import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import { UsageError } from '../errors.js';
import { citusLoaded, propagateLocalSettings } from './citus.js';
import { describeUrl, parseDatabaseUrl } from './libpq.js';
import { redact } from './redact.js';
import type { Session } from './session.js';

export type { Session } from './session.js';

/**
 * The type parsers of tenantify's own clients. int8 comes back as a string by default; counts
 * in the ledger fit a JS number. Set per client, never on pg's global `types`: an application
 * that imports tenantify keeps its own parsing of its own bigint columns.
 */
export const clientTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 && format !== 'binary'
      ? parseInt8
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

function parseInt8(value: string): number | string {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : value;
}

/** How long a session of tenantify's waits on a lock before its deadlock check (and PostgreSQL's cancel of a blocking autovacuum) runs. */
export const autovacuumYieldMs = 20;

/** The server processes of this process's open sessions: what a second SIGINT ends (exec/interrupt.ts). */
const openBackends = new Set<number>();

export function backendsOfThisProcess(): number[] {
  return [...openBackends];
}

export function kyselyOn(client: pg.Client): Kysely<any> {
  const pool = {
    connect: async () => Object.assign(client, { release: () => {} }),
    end: async () => {},
  };
  return new Kysely<any>({ dialect: new PostgresDialect({ pool: pool as unknown as pg.Pool }) });
}

/**
 * Opens a session. `signal` abandons a connection still being opened (its socket is
 * destroyed, so nothing waits on an unreachable host), for a caller that opens it while it
 * reads the plan and finds the plan wrong.
 */
export async function connect(url: string | undefined, purpose: string, signal?: AbortSignal): Promise<Session> {
  // node-pg's own parser would throw a TypeError naming nothing.
  if (url) parseDatabaseUrl(url);
  const client = withoutSslModeWarning(
    () =>
      new pg.Client({
        ...(url ? { connectionString: url } : {}),
        types: clientTypes,
        application_name: `tenantify ${purpose} (${hostname()} pid ${process.pid})`.slice(0, 63),
      }),
  );
  const description = url ? describeUrl(url) : describeEnvironment();
  // A server that goes away mid-run must not crash the process with an unhandled 'error'; it
  // is remembered, so a failure is classified by the connection's state, not by its wording.
  let lost: Error | undefined;
  let closing = false;
  client.on('error', (error: Error) => void (lost ??= error));
  client.on('end', () => void (closing ? undefined : (lost ??= new Error('the connection ended'))));
  // pg's end() waits for a connection being opened to open; destroying its socket does not.
  const abandon = (): void => (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  signal?.addEventListener('abort', abandon, { once: true });
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw connectionError(error, description);
  } finally {
    signal?.removeEventListener('abort', abandon);
  }
  const info = await client.query<{ pid: number; version: string; citus: boolean; superuser: boolean }>(
    `SELECT pg_backend_pid() AS pid, current_setting('server_version_num') AS version, ${citusLoaded} AS citus,
            current_setting('is_superuser') = 'on' AS superuser`,
  );
  const row = info.rows[0] as { pid: number; version: string; citus: boolean; superuser: boolean };
  const settings = [
    // When tenantify is killed, its statement in flight is cancelled within a second (PostgreSQL 14+),
    // so the lock of a dead run goes with it instead of lingering until the statement ends.
    ...(Number(row.version) >= 140000 ? ["SET client_connection_check_interval = '1s'"] : []),
    // PostgreSQL cancels an autovacuum that holds a table a session waits for when that session's
    // deadlock check runs: after 20 ms here rather than the server's 1 s, so long before a unit's lock
    // timeout (500 ms in a scaffolded plan) gives up, and before the app's queries queued behind the
    // unit's lock request have waited long (exec/autovacuum.ts).
    // A superuser's setting; other roles keep the cancel after a lock timeout.
    ...(row.superuser ? [`SET deadlock_timeout = '${autovacuumYieldMs}ms'`] : []),
    // A unit's SET LOCAL timeouts reach the Citus workers too (citus.ts).
    ...(row.citus ? [propagateLocalSettings] : []),
  ];
  if (settings.length > 0) await client.query(settings.join('; '));
  openBackends.add(row.pid);
  return {
    client,
    db: kyselyOn(client),
    backendPid: row.pid,
    serverVersion: Number(row.version),
    description,
    url,
    get lost() {
      return lost;
    },
    close: async () => {
      closing = true;
      openBackends.delete(row.pid);
      await client.end().catch(() => {});
    },
  };
}

export async function withSession<T>(url: string | undefined, purpose: string, fn: (session: Session) => Promise<T>): Promise<T> {
  const session = await connect(url, purpose);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

let sslModeNoted = false;

/**
 * node-pg reads sslmode=prefer, require and verify-ca as verify-full and says so in a
 * ten-line warning at every process start. tenantify keeps node-pg's stricter reading (its
 * own connection checks the certificate and host name) and says so once, in one line.
 */
function withoutSslModeWarning<T>(make: () => T): T {
  const original = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message;
    if (!text.startsWith("SECURITY WARNING: The SSL modes 'prefer', 'require', and 'verify-ca'")) {
      (original as (...args: unknown[]) => void).call(process, warning, ...rest);
      return;
    }
    if (sslModeNoted) return;
    sslModeNoted = true;
    process.stderr.write(
      "note: with sslmode prefer, require or verify-ca, tenantify's own connection still verifies the server's certificate and host name (as verify-full); pg_dump follows libpq's meaning\n",
    );
  }) as typeof process.emitWarning;
  try {
    return make();
  } finally {
    process.emitWarning = original;
  }
}

function describeEnvironment(): string {
  const env = process.env;
  return `${env['PGUSER'] ?? 'default user'}@${env['PGHOST'] ?? 'localhost'}${env['PGPORT'] ? `:${env['PGPORT']}` : ''}/${env['PGDATABASE'] ?? ''}`;
}

function connectionError(error: unknown, description: string): UsageError {
  const e = error as { code?: string; message?: string };
  const message = redact(e.message ?? String(error));
  const hints: Record<string, string> = {
    ECONNREFUSED: 'is the server running and listening there? check the host and port',
    ENOTFOUND: 'the host name does not resolve: check it',
    '28P01': 'the password was refused: check the credentials (they are never printed)',
    '28000': 'the server refused this user: check pg_hba.conf and the user name',
    '3D000': 'the database does not exist: check its name',
  };
  const noSsl = /does not support SSL/i.test(message)
    ? 'the server offers no SSL: drop sslmode=require from the URL (or enable ssl on the server)'
    : undefined;
  return new UsageError(`cannot connect to ${description}: ${message}`, {
    code: 'connection-failed',
    hint: hints[e.code ?? ''] ?? noSsl ?? 'check -d/--database-url, DATABASE_URL or the PG* variables',
  });
}
