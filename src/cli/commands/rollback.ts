import { checkRollbackOptions, rollback } from '../../app/rollback.js';
import { confirmDestructive, hasTerminal } from '../../ui/confirm.js';
import { createOutput } from '../../ui/output.js';
import { describeReverts, quietRevertReporter, rollbackJson, terminalRevertReporter } from '../../ui/rollback-view.js';
import { requireDatabase } from '../target.js';
import { fleetCommand, isFleet, refuseFleetOptionsAlone, type FleetCliOptions } from './fleet.js';

interface RollbackCliOptions extends FleetCliOptions {
  to?: string;
  steps?: number;
  all?: boolean;
  fromSnapshot?: boolean;
  yes?: boolean;
}

export default async function rollbackCommand(options: RollbackCliOptions): Promise<number> {
  checkRollbackOptions(options);
  refuseFleetOptionsAlone(options);
  if (isFleet(options)) return fleetCommand('rollback', options);
  const out = createOutput(options);
  const url = requireDatabase(options);
  const result = await rollback({
    dir: options.dir,
    url,
    steps: options.steps,
    to: options.to,
    all: Boolean(options.all),
    fromSnapshot: Boolean(options.fromSnapshot),
    reporter: out.json ? quietRevertReporter(out) : terminalRevertReporter(out),
    handleSignals: true,
    confirm: async (entries, database) => {
      const what = `rollback reverts ${entries.length} unit${entries.length === 1 ? '' : 's'} of ${database}, newest first`;
      const lines = describeReverts(entries);
      // On a terminal the list comes before the question; without one, the refusal carries it.
      if (!options.yes && hasTerminal()) {
        out.line(`${what}:`);
        for (const line of lines) out.line(`  ${line}`);
      }
      return confirmDestructive({
        yes: Boolean(options.yes),
        question: 'Revert them?',
        refusal: `${what}, and needs confirmation`,
        details: lines,
      });
    },
  });
  if (out.json) out.result(rollbackJson(result));
  if (result.declined) out.line('Not confirmed: nothing was rolled back.');
  else if (result.planned.length === 0) out.line('Nothing to roll back: no unit is applied.');
  else if (!out.json)
    out.line(out.style.green(`Rolled back ${result.units.length} unit${result.units.length === 1 ? '' : 's'} (run ${result.runId}).`));
  return 0;
}
