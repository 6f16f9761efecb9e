/** `plan` and `status`: where the plan stands, read-only (the ledger is not even created). */
import { withSession, type Session } from '../db/connection.js';
import { Ledger, type LedgerRun, type LedgerState } from '../db/ledger.js';
import { planRun, type Plan } from '../plan/planner.js';
import { loadProject, type Project } from './project.js';

export interface Inspection {
  project: Project;
  database: string | undefined;
  ledger: Omit<LedgerState, 'units'> & { schema: string };
  plan: Plan;
  lastRun: LedgerRun | undefined;
  /** The last run, when it has not finished and its session is still there: running now. */
  active: LedgerRun | undefined;
  /** The last run, when it has not finished and its session is gone: it died (the next apply records it and resumes). */
  died: LedgerRun | undefined;
}

export async function inspect(options: { dir: string; url: string | undefined; offline?: boolean }): Promise<Inspection> {
  const project = await loadProject(options.dir);
  const schema = project.config.ledgerSchema;
  if (options.offline) {
    return {
      project,
      database: undefined,
      ledger: { schema, exists: false, version: undefined, lastRun: undefined },
      plan: planRun(project.units, []),
      lastRun: undefined,
      active: undefined,
      died: undefined,
    };
  }
  return withSession(options.url, 'status', async (session) => {
    const ledger = new Ledger(session.db, schema);
    const state = await ledger.read();
    const unfinished = state.lastRun && !state.lastRun.finishedAt ? state.lastRun : undefined;
    const alive = unfinished ? await sessionAlive(session, unfinished) : false;
    return {
      project,
      database: session.description,
      ledger: { schema, exists: state.exists, version: state.version, lastRun: state.lastRun },
      plan: planRun(project.units, state.units),
      lastRun: state.lastRun,
      active: alive ? unfinished : undefined,
      died: alive ? undefined : unfinished,
    };
  });
}

/** The run's server session is still there (the same test as the one apply closes dead runs by). */
async function sessionAlive(session: Session, run: LedgerRun): Promise<boolean> {
  const { rows } = await session.client.query<{ alive: boolean }>(
    'SELECT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = $1 AND a.backend_start <= $2) AS alive',
    [run.backendPid, run.startedAt],
  );
  return Boolean(rows[0]?.alive);
}
