/**
 * The data rules' queries, run in ONE snapshot: a read-only REPEATABLE READ transaction
 * whose snapshot is exported (`pg_export_snapshot()`) to a few more connections that
 * import it (`SET TRANSACTION SNAPSHOT`), so the queries run side by side and every one
 * sees the database at the same moment, as if the catalog, the counts and the samples
 * were read at once. Every transaction runs under a statement timeout.
 */
import { connect, type Session } from '../db/connection.js';
import { ViolationsError } from '../errors.js';
import type { PlannedQuery } from './check.js';
import { violationsColumn, type Finding } from './rules/types.js';

export interface SnapshotOptions {
  /** Connections running queries at once, the leader's included. */
  connections: number;
  statementTimeoutMs: number;
}

export interface CheckSnapshot {
  /** The connection that holds the snapshot (the catalog is read on it). */
  readonly leader: Session;
  run(queries: PlannedQuery[]): Promise<Finding[]>;
  close(): Promise<void>;
}

const begin = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';

export async function openSnapshot(url: string | undefined, options: SnapshotOptions): Promise<CheckSnapshot> {
  const leader = await connect(url, 'tenancy check');
  const followers: Session[] = [];
  try {
    await leader.client.query(begin);
    await leader.client.query(`SET LOCAL statement_timeout = ${Math.max(0, Math.round(options.statementTimeoutMs))}`);
    const snapshot = ((await leader.client.query<{ id: string }>('SELECT pg_export_snapshot() AS id')).rows[0] as { id: string }).id;
    const follower = async (): Promise<Session> => {
      const session = await connect(url, 'tenancy check');
      followers.push(session);
      await session.client.query(begin);
      await session.client.query(`SET TRANSACTION SNAPSHOT '${snapshot}'`);
      await session.client.query(`SET LOCAL statement_timeout = ${Math.max(0, Math.round(options.statementTimeoutMs))}`);
      return session;
    };
    return {
      leader,
      run: async (queries) => {
        const wanted = Math.max(1, Math.min(options.connections, queries.length));
        while (followers.length < wanted - 1) await Promise.all(Array.from({ length: wanted - 1 - followers.length }, follower));
        const sessions = [leader, ...followers.slice(0, wanted - 1)];
        const results: (Finding | null)[] = new Array(queries.length).fill(null);
        let next = 0;
        await Promise.all(
          sessions.map(async (session) => {
            while (next < queries.length) {
              const i = next++;
              results[i] = await runQuery(session, queries[i] as PlannedQuery);
            }
          }),
        );
        return results.filter((f): f is Finding => f !== null);
      },
      close: async () => {
        for (const s of [...followers, leader]) {
          await s.client.query('ROLLBACK').catch(() => {});
          await s.close();
        }
      },
    };
  } catch (error) {
    for (const s of [...followers, leader]) await s.close();
    throw error;
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
