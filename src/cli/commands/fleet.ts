/** `apply | verify | status | rollback --targets FILE` (or `--targets-query SQL` on -d): the fleet's form of each command. */
import {
  applyFleet,
  rollbackFleet,
  statusFleet,
  targetsFromFile,
  targetsFromQuery,
  verifyFleet,
  type FleetResult,
  type Target,
} from '../../app/fleet.js';
import { UsageError } from '../../errors.js';
import { confirmDestructive, hasTerminal } from '../../ui/confirm.js';
import { fleetJson, fleetProgress, fleetSummary, renderFleetTable } from '../../ui/fleet-view.js';
import { createOutput, type Output } from '../../ui/output.js';
import type { CommonOptions } from '../common.js';
import { requireDatabase } from '../target.js';

export interface FleetCliOptions extends CommonOptions {
  targets?: string;
  targetsQuery?: string;
  canary?: number;
  parallel?: number;
  onError?: 'stop' | 'continue';
  // apply
  to?: string;
  dryRun?: boolean;
  snapshot?: boolean;
  autoRollback?: boolean;
  // verify
  unit?: string;
  tenancy?: boolean;
  // rollback
  steps?: number;
  all?: boolean;
  fromSnapshot?: boolean;
  yes?: boolean;
}

type FleetCommand = 'apply' | 'verify' | 'status' | 'rollback';

/** --targets or --targets-query was given: the command runs across the fleet. */
export function isFleet(options: FleetCliOptions): boolean {
  return options.targets !== undefined || options.targetsQuery !== undefined;
}

/** Fleet-only options without --targets are a usage error, before anything is read. */
export function refuseFleetOptionsAlone(options: FleetCliOptions): void {
  const alone = [options.canary !== undefined && '--canary', options.onError !== undefined && '--on-error'].filter(Boolean);
  if (alone.length > 0 && !isFleet(options)) {
    throw new UsageError(`${alone.join(' and ')} need${alone.length === 1 ? 's' : ''} --targets FILE or --targets-query SQL`, {
      code: 'fleet-option-alone',
      hint: 'they choose how a fleet runs: pass the targets',
    });
  }
}

export async function fleetCommand(command: FleetCommand, options: FleetCliOptions): Promise<number> {
  if (options.targets !== undefined && options.targetsQuery !== undefined) {
    throw new UsageError('pass one of --targets and --targets-query', {
      code: 'targets-twice',
      hint: '--targets reads a file of `name URL` lines; --targets-query reads `name, url` rows from -d',
    });
  }
  if (command === 'verify' && options.tenancy)
    throw new UsageError('verify --tenancy does not take --targets yet', {
      code: 'fleet-tenancy',
      hint: 'run `tenantify verify --tenancy -d URL` per target',
    });
  const out = createOutput(options);
  const targets =
    options.targets !== undefined
      ? await targetsFromFile(options.targets)
      : await targetsFromQuery(requireDatabase(options), options.targetsQuery ?? '');
  if (options.canary !== undefined && options.canary >= targets.length) {
    throw new UsageError(`--canary ${options.canary} leaves no other target of the ${targets.length}`, {
      code: 'canary-too-many',
      hint: `pass --canary below ${targets.length}`,
    });
  }
  const yes = command === 'rollback' ? await confirmFleetRollback(out, options, targets) : true;
  if (!yes) {
    out.line('Not confirmed: nothing was rolled back.');
    return 0;
  }
  const progress = fleetProgress(out, targets.length);
  const stop = stopOnSignals(out);
  const base = {
    dir: options.dir,
    targets,
    parallel: options.parallel,
    canary: options.canary,
    onError: options.onError,
    stop: stop.signal,
    observer: progress,
  };
  let result: FleetResult;
  try {
    result = await (command === 'apply'
      ? applyFleet({
          ...base,
          to: options.to,
          dryRun: options.dryRun,
          noSnapshot: options.snapshot === false,
          autoRollback: options.autoRollback,
        })
      : command === 'verify'
        ? verifyFleet({ ...base, unit: options.unit })
        : command === 'status'
          ? statusFleet(base)
          : rollbackFleet({
              ...base,
              steps: options.steps,
              to: options.to,
              all: options.all,
              fromSnapshot: options.fromSnapshot,
              confirm: async () => true,
            }));
  } finally {
    progress.finish();
    stop.uninstall();
  }
  if (out.json) out.result(fleetJson(result));
  else
    renderFleetTable(
      out,
      result,
      command === 'apply'
        ? options.dryRun
          ? 'dry run'
          : 'applied now'
        : command === 'rollback'
          ? 'reverted'
          : command === 'verify'
            ? 'checks'
            : 'ran',
    );
  if (command === 'apply' && options.dryRun)
    out.line(out.style.yellow('Dry run: on each target the units ran in one transaction that was rolled back; nothing was changed.'));
  out.line(fleetSummary(out, result));
  return result.exitCode;
}

/** Asked once for the fleet (the same rollback on each target); --yes without a terminal. */
async function confirmFleetRollback(out: Output, options: FleetCliOptions, targets: Target[]): Promise<boolean> {
  const what = options.all
    ? 'every applied unit'
    : options.steps !== undefined
      ? `the newest ${options.steps} applied unit${options.steps === 1 ? '' : 's'}`
      : options.to !== undefined
        ? `the units applied after ${options.to}`
        : 'the newest applied unit';
  const text = `rollback reverts ${what} on each of ${targets.length} targets`;
  const details = targets.map((t) => t.name);
  if (!options.yes && hasTerminal()) out.line(`${text}: ${details.join(', ')}`);
  return confirmDestructive({ yes: Boolean(options.yes), question: 'Revert them?', refusal: `${text}, and needs confirmation`, details });
}

/**
 * SIGINT / SIGTERM: the first stops every running target at its next safe point (its
 * statement in flight cancelled, its transaction rolled back) and starts no other; a second
 * leaves at once (each server rolls back what was open).
 */
function stopOnSignals(out: Output): { signal: AbortSignal; uninstall(): void } {
  const controller = new AbortController();
  const handler = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      out.log(`${signal} again: leaving now; each server rolls back its open transaction`);
      process.exit(130);
    }
    out.log(`${signal}: every running target stops at its next safe point; no other starts...`);
    controller.abort(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    uninstall: () => {
      process.removeListener('SIGINT', handler);
      process.removeListener('SIGTERM', handler);
    },
  };
}
