/**
 * A second SIGINT: the run does not wait for its own sessions. From a new connection, their
 * server processes are ended (the server rolls back what was open and the run lock goes
 * with them), and once they are gone the ledger is told, so no unit stays `running`.
 */
import { backendsOfThisProcess, connect } from '../db/connection.js';
import { Ledger } from '../db/ledger.js';

export async function endRunNow(
  url: string | undefined,
  ledgerSchema: string,
  runId: number | undefined,
  signal: string,
  log: (text: string) => void,
): Promise<void> {
  const backends = backendsOfThisProcess();
  const other = await connect(url, 'interrupt');
  try {
    await other.client.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [backends]);
    // Until they are gone, a unit's transaction may still be committing: the ledger is told after.
    for (let waited = 0; waited < 5000; waited += 50) {
      const left = await other.client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY ($1::int[])', [
        backends,
      ]);
      if ((left.rows[0]?.n ?? 0) === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (runId === undefined) return;
    const units = await new Ledger(other.db, ledgerSchema).interruptRun(runId, signal);
    log(
      `${units.length > 0 ? `${units.join(', ')} rolled back and recorded as interrupted` : 'the run recorded as interrupted'}; run the same command again to resume`,
    );
  } finally {
    await other.close();
  }
}
