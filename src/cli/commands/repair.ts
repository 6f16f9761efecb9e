import { repair } from '../../app/repair.js';
import { createOutput } from '../../ui/output.js';
import type { CommonOptions } from '../common.js';
import { requireDatabase } from '../target.js';

interface RepairCliOptions extends CommonOptions {
  reason?: string;
}

export default async function repairCommand(options: RepairCliOptions, args: string[]): Promise<number> {
  const out = createOutput(options);
  const result = await repair({ dir: options.dir, url: requireDatabase(options), unit: args[0] ?? '', reason: options.reason ?? '' });
  if (out.json) {
    out.result({ ...result, at: result.at?.toISOString() ?? null, user: result.user ?? null, runId: result.runId ?? null });
    return 0;
  }
  if (!result.repaired) {
    out.line(
      `Nothing to repair: ${result.unit}'s file matches what the ledger of ${result.database} holds (checksum ${result.checksum.slice(0, 12)}).`,
    );
    return 0;
  }
  out.line(
    out.style.green(
      `Repaired ${result.unit} in ${result.database} (run ${result.runId}): checksum ${result.previousChecksum.slice(0, 12)} -> ${result.checksum.slice(0, 12)}, ${result.verifyChecks.length} verify quer${result.verifyChecks.length === 1 ? 'y' : 'ies'} stored.`,
    ),
  );
  out.line(
    `The ledger's events record it as repaired by ${result.user}, with the reason and what was there before. \`tenantify verify\` runs the new queries.`,
  );
  return 0;
}
