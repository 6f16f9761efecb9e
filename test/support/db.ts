/** Fresh databases per test on the suite's throwaway server, and what tests ask of them. */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, inject } from 'vitest';
import { clientTypes } from '../../src/db/connection.js';
import { createScratchDatabase } from '../../src/db/scratch-database.js';

export function serverUrl(): string {
  return inject('serverUrl');
}

export function databaseUrl(name: string): string {
  const url = new URL(serverUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * `text` on this test file's session for `url`: one per database URL, opened at the first
 * query and kept (a session's start and end cost the server about 25 ms of CPU, and tests ask
 * thousands of times). Each query leaves it as a new one would be: `DISCARD ALL` after it
 * (settings, temporary tables, session advisory locks gone); a session left in a transaction, or
 * one that failed, is closed and the next query opens another. A query asked while another runs
 * has a session of its own, as before (none waits for the other). Closed before its database is
 * dropped or copied as a template, by `endSessions`, and when the file's tests end.
 */
export async function query<T extends pg.QueryResultRow = Record<string, unknown>>(
  url: string,
  text: string,
  params?: unknown[],
): Promise<T[]> {
  return onSession(url, async (client) => (await client.query<T>(text, params)).rows);
}

/** `body` on `query`'s session for `url` (see there), or on one of its own while that one is busy. */
async function onSession<T>(url: string, body: (client: pg.Client) => Promise<T>): Promise<T> {
  const kept = sessions.get(url);
  if (kept?.busy) {
    const client = new pg.Client({ connectionString: url, types: clientTypes });
    await client.connect();
    try {
      return await body(client);
    } finally {
      await client.end();
    }
  }
  const session = kept ?? openSession(url);
  session.busy = true;
  try {
    const client = await session.client;
    try {
      return await body(client);
    } finally {
      await client.query('DISCARD ALL').catch(() => endSession(session));
    }
  } finally {
    session.busy = false;
  }
}

interface Session {
  url: string;
  client: Promise<pg.Client>;
  busy: boolean;
}
const sessions = new Map<string, Session>();

function openSession(url: string): Session {
  const client = new pg.Client({ connectionString: url, types: clientTypes });
  const session: Session = { url, client: client.connect().then(() => client), busy: false };
  const forget = () => {
    if (sessions.get(url) === session) sessions.delete(url);
  };
  client.on('error', forget); // ended by the server (terminated, its database dropped): the next query opens another
  client.on('end', forget);
  session.client.catch(forget);
  sessions.set(url, session);
  return session;
}

async function endSession(session: Session): Promise<void> {
  if (sessions.get(session.url) === session) sessions.delete(session.url);
  await (await session.client.catch(() => undefined))?.end().catch(() => {});
}

/**
 * Closes `query`'s sessions on database `name` (every database when not given): before a test
 * counts or ends the sessions on it, as it would have found none of them before.
 */
export async function endSessions(name?: string): Promise<void> {
  const ending = [...sessions.values()].filter((s) => name === undefined || new URL(s.url).pathname === `/${name}`);
  await Promise.all(ending.map(endSession));
}
afterAll(() => endSessions());

/** A connection of its own (pg's own type parsers) for the body's life. */
export async function withClient<T>(url: string, body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

/** A new empty database (or a copy of `template`), dropped by the returned cleanup. */
export async function freshDatabase(
  prefix = 't',
  template = 'template0',
): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  // CREATE DATABASE ... TEMPLATE refuses while a session is connected to the template.
  if (template !== 'template0') await endSessions(template);
  await createScratchDatabase(await admin(), name, template);
  return {
    name,
    url: databaseUrl(name),
    drop: async () => {
      await endSessions(name);
      await (await admin()).query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/**
 * One session on the server's `postgres` database for a test file's CREATE and DROP DATABASE
 * (a session's start and end cost the server about 25 ms of CPU, two per test database);
 * opened again if it failed, closed when the file's tests end.
 */
let adminSession: Promise<pg.Client> | undefined;
function admin(): Promise<pg.Client> {
  adminSession ??= (async () => {
    const client = new pg.Client({ connectionString: serverUrl() });
    client.on('error', () => void (adminSession = undefined));
    client.on('end', () => void (adminSession = undefined));
    await client.connect();
    return client;
  })().catch((error: unknown) => {
    adminSession = undefined;
    throw error;
  });
  return adminSession;
}
afterAll(async () => {
  const open = adminSession;
  adminSession = undefined;
  await (await open?.catch(() => undefined))?.end();
});

/**
 * Call in a describe block: every database given to the returned function (which hands it
 * back) is dropped after the block's tests, newest first.
 */
export function dropAfterAll(): <T extends { drop: () => Promise<void> }>(db: T) => T {
  const drops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const drop of drops.reverse()) await drop();
  });
  return (db) => {
    drops.push(db.drop);
    return db;
  };
}

/** A template database holding `sqlFile` loaded once per test file; copies of it are fast. */
export async function fixtureTemplate(sqlFile: string, prefix = 'tpl'): Promise<{ name: string; drop: () => Promise<void> }> {
  const db = await freshDatabase(prefix);
  await query(db.url, readFileSync(sqlFile, 'utf8'));
  return { name: db.name, drop: db.drop };
}

/**
 * Every user table outside the ledger, with a fingerprint of its content (timestamps left out:
 * now() differs per run). On `query`'s session: on the suite's server a session's start and end
 * cost about 25 ms of CPU, and this asks once per table.
 */
export async function contentFingerprint(url: string, ledgerSchema = 'tenantify'): Promise<Record<string, string>> {
  return onSession(url, async (client) => {
    const { rows: tables } = await client.query<{ name: string; cols: string | null }>(
      `SELECT format('%I.%I', c.table_schema, c.table_name) AS name,
            string_agg(format('%I', c.column_name), ', ' ORDER BY c.ordinal_position)
              FILTER (WHERE c.data_type NOT LIKE 'timestamp%') AS cols
       FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
      WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN ('pg_catalog', 'information_schema', $1)
      GROUP BY 1 ORDER BY 1`,
      [ledgerSchema],
    );
    const result: Record<string, string> = {};
    for (const { name, cols } of tables) {
      const {
        rows: [row],
      } = await client.query<{ n: number; md5: string | null }>(
        `SELECT count(*)::int AS n, md5(string_agg(r::text, E'\\n' ORDER BY r::text)) AS md5 FROM (SELECT ${cols ?? '1'} FROM ${name}) r`,
      );
      result[name] = `${row?.n ?? 0}:${row?.md5 ?? ''}`;
    }
    return result;
  });
}

/**
 * A gate a unit under test waits at: the test holds advisory lock `key`, a unit body runs
 * `SELECT pg_advisory_xact_lock(key)`, and stays inside its run until `open()`. Tests that
 * need "a run in progress" use it instead of guessing how long a pg_sleep lasts.
 */
export async function holdGate(
  url: string,
  key = 4242,
): Promise<{ sql: string; reached: (run: Promise<{ code: number | null; stderr: string }>) => Promise<void>; open: () => Promise<void> }> {
  const holder = new pg.Client({ connectionString: url });
  holder.on('error', () => {}); // the database may be dropped under it when a test fails
  await holder.connect();
  await holder.query('SELECT pg_advisory_lock($1)', [key]);
  // Waiting at the gate is the point: the unit's lock timeout (500ms by default) must not end the wait.
  const sql = `SET LOCAL lock_timeout = 0;\nSELECT pg_advisory_xact_lock(${key});`;
  // A session of this database waiting for the key: an advisory lock on one bigint is (classid, objid) = (high, low) 32 bits.
  const waiting = `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                    WHERE l.locktype = 'advisory' AND NOT l.granted AND l.classid = 0 AND l.objid = ${key} AND l.objsubid = 1
                      AND a.datname = current_database()`;
  return {
    sql,
    /** Resolves once `run` waits at the gate; fails with its output if it ends first. */
    reached: async (run) => {
      const stop = new AbortController();
      const ended = run.then((r) => {
        throw new Error(`the run ended (exit ${r.code}) before it reached the gate:\n${r.stderr}`);
      });
      ended.catch(() => stop.abort());
      await Promise.race([until(url, waiting, stop.signal), ended]);
    },
    open: async () => {
      await holder.end();
    },
  };
}

/**
 * Polls `sql` (returning one row with a number `n`) until n > 0; the test's timeout bounds the
 * wait. The polls share a connection (a session's start and end cost about 25 ms of the
 * server's CPU, twenty times a second); one that failed is opened again at the next poll.
 */
export async function until(url: string, sql: string, signal?: AbortSignal): Promise<void> {
  let client: pg.Client | undefined;
  const poll = async (): Promise<number> => {
    client ??= await openedClient(url);
    return (await client.query<{ n: number | null }>(sql)).rows[0]?.n ?? 0;
  };
  try {
    while (!signal?.aborted) {
      const n = await poll().catch(async () => {
        await client?.end().catch(() => {});
        client = undefined;
        return 0;
      });
      if (n > 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await client?.end().catch(() => {});
  }
}

/** A connection that outlives a dropped database or an ended session quietly (its next query fails). */
async function openedClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, types: clientTypes });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw error;
  }
  return client;
}

/** A process whose command line names a throwaway server's data directory (read from /proc: no pgrep needed). */
export function postmasterRunning(directory: string): boolean {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${directory}/data`)) return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}
