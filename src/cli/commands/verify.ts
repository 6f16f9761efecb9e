import { verify } from '../../app/verify.js';
import { ExitCode } from '../../errors.js';
import { createOutput } from '../../ui/output.js';
import { renderVerifyTable, verifyJson, verifySummary } from '../../ui/verify-view.js';
import type { CommonOptions } from '../common.js';
import { requireDatabase } from '../target.js';

interface VerifyCliOptions extends CommonOptions {
  unit?: string;
}

export default async function verifyCommand(options: VerifyCliOptions): Promise<number> {
  const out = createOutput(options);
  const result = await verify({ dir: options.dir, url: requireDatabase(options), unit: options.unit });
  if (out.json) out.result(verifyJson(result));
  else {
    out.line(`Verify queries of the applied units of ${result.database}, as stored when each was applied`);
    if (result.units.length > 0) renderVerifyTable(out, result);
  }
  // Under --json the summary goes to stderr with the other human lines.
  out.line(verifySummary(out, result));
  return result.ok ? ExitCode.ok : ExitCode.violations;
}
