/** `rollback`: what it will revert, its progress per unit, and the contract's JSON. */
import type { RollbackResult } from '../app/rollback.js';
import type { RevertReporter } from '../exec/revert.js';
import type { RollbackEntry } from '../plan/planner.js';
import type { Output, Spinner } from './output.js';

/** One line per unit to revert, newest first: what runs, and how. */
export function describeReverts(entries: RollbackEntry[]): string[] {
  return entries.map((e) => {
    const script = e.unit.rollback;
    const how = !script
      ? 'no rollback file'
      : script.options.transaction
        ? 'in one transaction'
        : 'statement by statement (outside a transaction)';
    const state = e.partial ? `, ${e.ledger.status} part-way` : '';
    const resume = e.resume.kind === 'statement' ? `, resuming at statement ${e.resume.statement + 1}` : '';
    return `${e.unit.id} (${e.unit.kind}${state}): ${script?.file ?? '-'}, ${how}${resume}`;
  });
}

export function rollbackJson(result: RollbackResult) {
  return {
    runId: result.runId ?? null,
    database: result.database,
    declined: result.declined,
    units: result.units.map((u) => ({
      id: u.id,
      outcome: u.outcome,
      durationMs: u.durationMs,
      checks: u.checks.map(({ name, section, ok, violations }) => ({ name, section, ok, violations })),
    })),
  };
}

export function terminalRevertReporter(out: Output): RevertReporter {
  const { style } = out;
  let pending: Promise<Spinner> | undefined;
  let started = 0;
  const elapsed = (): string => style.dim(`${((performance.now() - started) / 1000).toFixed(1)}s`);
  return {
    revertStarted(entry) {
      started = performance.now();
      pending = out.spinner(`reverting ${entry.unit.id}`);
    },
    revertDone(unit, outcome) {
      const checks =
        outcome.checks.length > 0 ? style.dim(` ${outcome.checks.length} check${outcome.checks.length === 1 ? '' : 's'} passed`) : '';
      const text = `${unit.id} rolled back ${elapsed()}${checks}`;
      void pending?.then((s) => s.succeed(text));
    },
    revertFailed(unit, message) {
      const text = `${unit.id} ${elapsed()} ${style.red(message.split('\n')[0] ?? '')}`;
      void pending?.then((s) => s.fail(text));
    },
    note(text) {
      out.log(style.dim(text));
    },
  };
}

/** For --json runs: progress lines on stderr, nothing else. */
export function quietRevertReporter(out: Output): RevertReporter {
  return {
    revertStarted: (entry) => out.log(`${entry.unit.id}: reverting`),
    revertDone: (unit, o) => out.log(`${unit.id}: rolled back in ${o.durationMs} ms`),
    revertFailed: (unit, message) => out.log(`${unit.id}: rollback failed: ${message.split('\n')[0]}`),
    note: (text) => out.log(text),
  };
}
