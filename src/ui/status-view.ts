/** `status` and `plan`: what the ledger says of a run that did not finish. */
import type { Inspection } from '../app/inspect.js';
import type { LedgerRun } from '../db/ledger.js';
import type { Finding } from '../lint/types.js';
import { inspectionJson } from './plan-view.js';

/** The contract's JSON of `plan` and `status`, a dead run said to be dead. */
export function statusJson(inspection: Inspection, findings?: Finding[]) {
  const json = inspectionJson(inspection, findings);
  return {
    ...json,
    lastRun: json.lastRun && inspection.died ? { ...json.lastRun, outcome: 'died' } : json.lastRun,
    ...diedRunJson(inspection),
  };
}

/**
 * The JSON of a run that died without finishing: `activeRun` is only a run still going,
 * and the dead one is named with what happens next.
 */
function diedRunJson(inspection: Inspection) {
  const run = inspection.died;
  if (!run) return { diedRun: null };
  return {
    diedRun: {
      id: run.id,
      command: run.command,
      user: run.dbUser,
      host: run.clientHost,
      pid: run.clientPid,
      startedAt: run.startedAt.toISOString(),
      outcome: 'died',
      note: 'its session is gone without finishing it; the next apply records it as died and resumes its units',
    },
  };
}

export function describeDiedRun(run: LedgerRun): string {
  const when = run.startedAt.toISOString().replace('T', ' ').slice(0, 19);
  return `run ${run.id}: \`tenantify ${run.command}\` by ${run.dbUser} on ${run.clientHost} (pid ${run.clientPid}), started ${when} UTC, died without finishing (its session is gone): \`tenantify apply\` records it and resumes`;
}
