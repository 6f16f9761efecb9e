import { inspect } from '../../app/inspect.js';
import { createOutput } from '../../ui/output.js';
import { describeRun, renderUnitsTable } from '../../ui/plan-view.js';
import { describeDiedRun, statusJson } from '../../ui/status-view.js';
import { requireDatabase } from '../target.js';
import { fleetCommand, isFleet, refuseFleetOptionsAlone, type FleetCliOptions } from './fleet.js';

export default async function status(options: FleetCliOptions): Promise<number> {
  refuseFleetOptionsAlone(options);
  if (isFleet(options)) return fleetCommand('status', options);
  const out = createOutput(options);
  const inspection = await inspect({ dir: options.dir, url: requireDatabase(options) });
  if (out.json) {
    out.result(statusJson(inspection));
    return 0;
  }
  out.line(
    `Ledger of ${inspection.database} (schema ${inspection.ledger.schema}${inspection.ledger.exists ? '' : ': not created yet, nothing applied'})`,
  );
  renderUnitsTable(out, inspection, 'status');
  const applied = inspection.plan.entries.filter((e) => e.status === 'applied').length;
  out.line(`${applied} of ${inspection.plan.entries.length} units applied; ${inspection.plan.toRun.length} to run.`);
  if (inspection.died) out.line(`Last ${describeDiedRun(inspection.died)}`);
  else if (inspection.lastRun) out.line(`Last ${describeRun(inspection.lastRun)}`);
  return 0;
}
