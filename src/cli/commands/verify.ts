import { tenancyCheck } from '../../app/tenancy-check.js';
import { verify } from '../../app/verify.js';
import { ExitCode } from '../../errors.js';
import { createOutput } from '../../ui/output.js';
import { renderTenancyCheck, tenancyCheckJson, tenancyCheckSummary } from '../../ui/tenancy-check-view.js';
import { renderVerifyTable, verifyJson, verifySummary } from '../../ui/verify-view.js';
import { requireDatabase } from '../target.js';
import { fleetCommand, isFleet, refuseFleetOptionsAlone, type FleetCliOptions } from './fleet.js';

interface VerifyCliOptions extends FleetCliOptions {
  unit?: string;
  tenancy?: boolean;
}

export default async function verifyCommand(options: VerifyCliOptions): Promise<number> {
  refuseFleetOptionsAlone(options);
  if (isFleet(options)) return fleetCommand('verify', options);
  const out = createOutput(options);
  const url = requireDatabase(options);
  const result = await verify({ dir: options.dir, url, unit: options.unit });
  // --tenancy: isolation proven beside the stored queries (tenancy check, in its own read-only snapshot).
  const tenancy = options.tenancy ? await tenancyCheck({ dir: options.dir, url }) : undefined;
  if (out.json) out.result({ ...verifyJson(result), ...(tenancy ? { tenancy: tenancyCheckJson(tenancy) } : {}) });
  else {
    out.line(`Verify queries of the applied units of ${result.database}, as stored when each was applied`);
    if (result.units.length > 0) renderVerifyTable(out, result);
    if (tenancy) renderTenancyCheck(out, tenancy);
  }
  // Under --json the summary goes to stderr with the other human lines.
  out.line(verifySummary(out, result));
  if (tenancy) out.line(tenancyCheckSummary(out, tenancy));
  return result.ok && (tenancy?.ok ?? true) ? ExitCode.ok : ExitCode.violations;
}
