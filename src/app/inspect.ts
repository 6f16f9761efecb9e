/** `plan` and `status`: where the plan stands, read-only (the ledger is not even created). */
import { withSession } from '../db/connection.js';
import { Ledger, type LedgerRun, type LedgerState } from '../db/ledger.js';
import { planRun, type Plan } from '../plan/planner.js';
import { loadProject, type Project } from './project.js';

export interface Inspection {
  project: Project;
  database: string | undefined;
  ledger: Omit<LedgerState, 'units'> & { schema: string };
  plan: Plan;
  lastRun: LedgerRun | undefined;
  /** The last run, when it has not finished: running now, or died (the next apply closes it). */
  active: LedgerRun | undefined;
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
    };
  }
  return withSession(options.url, 'status', async (session) => {
    const ledger = new Ledger(session.db, schema);
    const state = await ledger.read();
    const active = state.lastRun && !state.lastRun.finishedAt ? state.lastRun : undefined;
    return {
      project,
      database: session.description,
      ledger: { schema, exists: state.exists, version: state.version, lastRun: state.lastRun },
      plan: planRun(project.units, state.units),
      lastRun: state.lastRun,
      active,
    };
  });
}
