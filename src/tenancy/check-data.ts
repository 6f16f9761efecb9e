/**
 * The data rules' queries, run in ONE snapshot: a read-only REPEATABLE READ transaction
 * whose snapshot is exported (`pg_export_snapshot()`) to a few more connections that
 * import it (`SET TRANSACTION SNAPSHOT`), so the queries run side by side and every one
 * sees the database at the same moment, as if the catalog, the counts and the samples
 * were read at once. Every transaction runs under a statement timeout and ends in ROLLBACK.
 *
 * The other connections are opened as soon as the snapshot exists, while the catalog is
 * read on the first one: the scans start the moment the queries are known. The biggest
 * tables are scanned first, so a big scan does not start last beside idle connections.
 */
import { connect, type Session } from '../db/connection.js';
import { withTransaction, type TransactionOptions } from '../db/transaction.js';
import { ViolationsError } from '../errors.js';
import type { PlannedQuery } from './check.js';
import { violationsColumn, type Finding } from './rules/types.js';

export interface SnapshotOptions {
  /** Connections running queries at once, the leader's included. */
  connections: number;
  statementTimeoutMs: number;
}

export interface DataRun {
  /** Every connection has its first query on the server (or had none to run). */
  started: Promise<void>;
  findings: Promise<Finding[]>;
}

export interface CheckSnapshot {
  /** The connection that holds the snapshot (the catalog is read on it). */
  readonly leader: Session;
  /** The queries, biggest table first, on every connection at once. Once per snapshot. */
  run(queries: PlannedQuery[]): DataRun;
}

const readOnlySnapshot: TransactionOptions = { isolation: 'repeatable read', readOnly: true, rollback: true };

/** `fn` with the snapshot open; every connection is rolled back and closed when it returns or throws. */
export async function withCheckSnapshot<T>(
  url: string | undefined,
  options: SnapshotOptions,
  fn: (snapshot: CheckSnapshot) => Promise<T>,
): Promise<T> {
  const timeout = `SET LOCAL statement_timeout = ${Math.max(0, Math.round(options.statementTimeoutMs))}`;
  const leader = await connect(url, 'tenancy check');
  const opened: Promise<Session>[] = [];
  try {
    return await withTransaction(leader.client, readOnlySnapshot, async () => {
      await leader.client.query(timeout);
      const id = ((await leader.client.query<{ id: string }>('SELECT pg_export_snapshot() AS id')).rows[0] as { id: string }).id;
      for (let i = 1; i < options.connections; i++) opened.push(connect(url, 'tenancy check'));
      // Not awaited until the queries run: a failed connection must not go unhandled meanwhile.
      for (const session of opened) session.catch(() => {});
      let ran = false;
      const run = (queries: PlannedQuery[]): DataRun => {
        if (ran) throw new Error('a check snapshot runs its queries once');
        ran = true;
        const queue = [...queries].sort((a, b) => b.weight - a.weight);
        const results = new Map<PlannedQuery, Finding | null>();
        // `sent` is called once the connection's first query is on the server (a pg client sends
        // it when query() is called on an idle connection), or when it had none to run.
        const drain = async (session: Session, sent: () => void): Promise<void> => {
          for (let query = queue.shift(); query; query = queue.shift()) {
            const result = runQuery(session, query);
            sent();
            results.set(query, await result);
          }
          sent();
        };
        const follow = async (session: Promise<Session>, sent: () => void): Promise<void> => {
          const s = await session;
          await withTransaction(s.client, readOnlySnapshot, async () => {
            await s.client.query(`SET TRANSACTION SNAPSHOT '${id}'`);
            await s.client.query(timeout);
            await drain(s, sent);
          });
        };
        const used = Math.max(1, Math.min(options.connections, queue.length));
        const sent: Promise<void>[] = [];
        const signal = (): (() => void) => {
          let resolve = (): void => {};
          sent.push(new Promise<void>((r) => (resolve = r)));
          return () => resolve();
        };
        const workers = [drain(leader, signal()), ...opened.slice(0, used - 1).map((session) => follow(session, signal()))];
        const findings = Promise.all(workers).then(
          () => queries.map((q) => results.get(q)).filter((f): f is Finding => f !== null && f !== undefined),
          (error: unknown) => {
            queue.length = 0;
            throw error;
          },
        );
        const settled = findings.then(
          () => {},
          () => {},
        );
        const started = Promise.race([Promise.all(sent).then(() => {}), settled]);
        return { started, findings };
      };
      return fn({ leader, run });
    });
  } finally {
    const sessions = await Promise.allSettled(opened);
    for (const s of sessions) if (s.status === 'fulfilled') await s.value.close();
    await leader.close();
  }
}

/** The first rows in violation, each with the count of all of them. */
async function runQuery(session: Session, query: PlannedQuery): Promise<Finding | null> {
  try {
    const result = await session.client.query<Record<string, unknown>>(query.sql);
    const first = result.rows[0];
    if (!first) return null;
    const rows = Number(first[violationsColumn]);
    const sample = result.rows.map(({ [violationsColumn]: _all, ...row }) => row);
    return { rule: query.rule, level: query.level, table: query.table, detail: query.detail, rows, sample };
  } catch (error) {
    const e = error as { code?: string; message?: string };
    const timedOut = e.code === '57014';
    throw new ViolationsError(`${query.rule} on ${query.table} could not be checked: ${e.message ?? String(error)}`, {
      code: 'check-incomplete',
      hint: timedOut
        ? 'isolation is not proven: the query ran out of time; run the check when the database is quieter, or with a longer statement timeout'
        : 'isolation is not proven for this table: the query is shown below',
      details: query.sql.split('\n'),
    });
  }
}
