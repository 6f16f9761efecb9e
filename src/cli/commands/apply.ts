import { apply } from '../../app/apply.js';
import { consolidatedSources } from '../../app/consolidate-report.js';
import { lockSummary } from '../../exec/lock-trace.js';
import { createOutput } from '../../ui/output.js';
import { quietReporter, terminalReporter } from '../../ui/reporter.js';
import { quietRevertReporter, terminalRevertReporter } from '../../ui/rollback-view.js';
import { requireDatabase } from '../target.js';
import { fleetCommand, isFleet, refuseFleetOptionsAlone, type FleetCliOptions } from './fleet.js';

interface ApplyCliOptions extends FleetCliOptions {
  to?: string;
  dryRun?: boolean;
  snapshot?: boolean;
  parallel?: number;
  autoRollback?: boolean;
}

export default async function applyCommand(options: ApplyCliOptions): Promise<number> {
  refuseFleetOptionsAlone(options);
  if (isFleet(options)) return fleetCommand('apply', options);
  const out = createOutput(options);
  const url = requireDatabase(options);
  const reporter = out.json ? quietReporter(out) : terminalReporter(out, { dryRun: Boolean(options.dryRun) });
  const result = await apply({
    dir: options.dir,
    url,
    to: options.to,
    dryRun: Boolean(options.dryRun),
    noSnapshot: options.snapshot === false,
    parallel: options.parallel,
    reporter,
    handleSignals: true,
    autoRollback: Boolean(options.autoRollback),
    revertReporter: out.json ? quietRevertReporter(out) : terminalRevertReporter(out),
    warn: (text) => out.log(out.style.yellow(text)),
  });
  const applied = result.units.filter((u) => u.outcome === 'applied');
  if (out.json) {
    // A consolidation plan: one record per source copied (tenancy consolidate).
    const sources = await consolidatedSources(url, result);
    out.result({
      runId: result.runId ?? null,
      dryRun: result.dryRun,
      database: result.database,
      units: result.units.map((u) => ({
        id: u.id,
        outcome: u.outcome,
        durationMs: u.durationMs,
        checks: u.checks.map(({ name, section, ok, violations }) => ({ name, section, ok, violations })),
        ...(u.note ? { note: u.note } : {}),
        ...(u.locks ? { locks: u.locks } : {}),
      })),
      ...(sources.length > 0 ? { sources } : {}),
    });
    return 0;
  }
  if (result.units.length === 0) out.line('Nothing to apply: every unit is applied.');
  else if (result.dryRun) {
    out.line(out.style.yellow(`Dry run: ${applied.length} units ran and were rolled back; nothing was changed.`));
    if (applied.length > 0) out.line('Locks taken (held until each unit commits):');
    for (const unit of applied) out.line(`  ${unit.id}  ${lockSummary(unit.locks)}`);
  } else out.line(out.style.green(`Applied ${applied.length} unit${applied.length === 1 ? '' : 's'} (run ${result.runId}).`));
  return 0;
}
