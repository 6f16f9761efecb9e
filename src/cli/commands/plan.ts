import { inspect } from '../../app/inspect.js';
import { createOutput } from '../../ui/output.js';
import { renderUnitsTable } from '../../ui/plan-view.js';
import { statusJson } from '../../ui/status-view.js';
import { hasLibpqEnvironment, resolveDatabaseUrl, type CommonOptions } from '../common.js';

export default async function plan(options: CommonOptions): Promise<number> {
  const out = createOutput(options);
  const url = resolveDatabaseUrl(options);
  const offline = !url && !hasLibpqEnvironment();
  const inspection = await inspect({ dir: options.dir, url, offline });
  if (out.json) {
    out.result(statusJson(inspection));
    return 0;
  }
  const { plan: p } = inspection;
  out.line(offline ? 'No database given: every unit is shown as pending (pass -d to read the ledger).' : `Plan for ${inspection.database}`);
  renderUnitsTable(out, inspection, 'plan');
  const drift = p.drifted.length + p.missing.length;
  out.line(`${p.entries.length} units; ${p.toRun.length} to run${drift > 0 ? out.style.red(`; ${drift} drifted: apply will refuse`) : ''}.`);
  return 0;
}
