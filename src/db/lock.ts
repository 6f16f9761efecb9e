/**
 * One run at a time: a session advisory lock, held for the run's life on the run's own
 * connection. When the process dies, its session ends and the lock is gone with it: there
 * is never a stale lock to clear by hand.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { LockHeldError } from '../errors.js';
import type { Session } from './connection.js';
import type { Ledger } from './ledger.js';

/** First key of the pair: tenantify's own namespace among advisory locks. */
const lockNamespace = 0x7e4a;

/**
 * A key from a ledger schema's name as PostgreSQL stores it (two names that PostgreSQL cuts
 * to one schema give one key).
 */
export function lockKey(schema: string): number {
  return (
    createHash('sha256')
      .update(`tenantify:${storedIdentifier(schema)}`)
      .digest()
      .readUInt32BE(0) & 0x7fffffff
  );
}

/** PostgreSQL's identifier limit: NAMEDATALEN - 1 bytes. */
const identifierBytes = 63;

/** A name as PostgreSQL keeps it: cut to 63 bytes of UTF-8, at a character's boundary. */
export function storedIdentifier(name: string): string {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length <= identifierBytes) return name;
  let end = identifierBytes;
  // Back over continuation bytes (10xxxxxx) to the start of the character that does not fit.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

/**
 * The run lock's key: one per database (advisory locks live in their database), whatever
 * the ledger's schema. Two configurations with two ledgers on one database still change one
 * database: one run at a time. It is the key the default ledger's lock has always had, so a
 * run of an older tenantify holding it still keeps this one out.
 */
export const runLockKey = lockKey('tenantify');

export interface LockHolder {
  pid: number;
  user: string | null;
  clientAddress: string | null;
  applicationName: string | null;
  since: Date | null;
}

export async function withAdvisoryLock<T>(session: Session, ledger: Ledger, fn: () => Promise<T>): Promise<T> {
  const release = await takeRunLock(session, ledger);
  try {
    return await fn();
  } finally {
    await release();
  }
}

/**
 * How long a run waits for the session of a run from this machine whose process is gone
 * (kill -9): the server ends it once it notices its client gone, within a second
 * (`client_connection_check_interval`), plus the time to roll back what it had open.
 */
const orphanWaitMs = 10_000;

/** Takes the run's lock, or throws who holds it (exit 4); returns its release. */
export async function takeRunLock(session: Session, ledger: Ledger): Promise<() => Promise<void>> {
  const key = runLockKey;
  const tryLock = async (): Promise<boolean> =>
    (await session.client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [lockNamespace, key])).rows[0]?.ok === true;
  let got = await tryLock();
  // Resumed right after a kill -9: the killed run's session still holds the lock for a moment. Wait for it, not for a live run.
  for (const started = Date.now(); !got && Date.now() - started < orphanWaitMs;) {
    const holder = await findHolder(session, key);
    if (holder && !isOrphan(holder)) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
    got = await tryLock();
  }
  if (!got) throw await lockHeldError(session, ledger, key);
  return async () => {
    await session.client.query('SELECT pg_advisory_unlock($1, $2)', [lockNamespace, key]).catch(() => {});
  };
}

async function lockHeldError(session: Session, ledger: Ledger, key: number): Promise<LockHeldError> {
  const holder = await findHolder(session, key);
  if (!holder) {
    return new LockHeldError('another run held the lock a moment ago', {
      code: 'lock-held',
      hint: 'try again; if it keeps happening, look at pg_locks for advisory locks',
    });
  }
  const run = (await ledger.exists()) === undefined ? undefined : await ledger.runOfBackend(holder.pid).catch(() => undefined);
  const who = run
    ? `\`tenantify ${run.command}\` (run ${run.id}) by ${run.dbUser} on ${run.clientHost}, client pid ${run.clientPid}, since ${clock(run.startedAt)}`
    : describeSession(holder);
  return new LockHeldError(`another run holds the lock: ${who} (server pid ${holder.pid})`, {
    code: 'lock-held',
    hint: `wait for it to finish (tenantify status shows where it is), or end it with SELECT pg_terminate_backend(${holder.pid}); its current unit rolls back and \`tenantify apply\` resumes`,
  });
}

async function findHolder(session: Session, key: number): Promise<LockHolder | undefined> {
  const result = await session.client.query<{
    pid: number;
    usename: string | null;
    client_addr: string | null;
    application_name: string | null;
    backend_start: Date | null;
  }>(
    `SELECT a.pid, a.usename, host(a.client_addr) AS client_addr, a.application_name, a.backend_start
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int::oid AND l.objid = $2::bigint::oid AND l.objsubid = 2
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      LIMIT 1`,
    [lockNamespace, key],
  );
  const row = result.rows[0];
  if (!row) return undefined;
  return {
    pid: row.pid,
    user: row.usename,
    clientAddress: row.client_addr,
    applicationName: row.application_name,
    since: row.backend_start,
  };
}

function clock(date: Date): string {
  return `${date.toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

/** A holder's session as tenantify names its own (connection.ts: "tenantify <command> (<host> pid <pid>)"); undefined for another client's. */
function tenantifySession(holder: LockHolder): { command: string; host: string; pid: number } | undefined {
  const ours = /^tenantify (.+) \((\S+) pid (\d+)\)$/.exec(holder.applicationName ?? '');
  return ours ? { command: ours[1] as string, host: ours[2] as string, pid: Number(ours[3]) } : undefined;
}

/** A holder named as a tenantify session of this machine (connection.ts) whose process no longer exists. */
function isOrphan(holder: LockHolder): boolean {
  const ours = tenantifySession(holder);
  if (!ours || ours.host !== hostname()) return false;
  try {
    process.kill(ours.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Before its run is in the ledger, a holder is known by its session: tenantify names it "tenantify <command> (<host> pid <pid>)". */
function describeSession(holder: LockHolder): string {
  const since = holder.since ? clock(holder.since) : 'an unknown time';
  const ours = tenantifySession(holder);
  if (ours)
    return `\`tenantify ${ours.command}\` by ${holder.user ?? 'an unknown user'} on ${ours.host}, client pid ${ours.pid}, since ${since}`;
  return `${holder.applicationName || 'a session'}${holder.user ? ` by ${holder.user}` : ''}${holder.clientAddress ? ` from ${holder.clientAddress}` : ''}, since ${since}`;
}
