/** The executor's events, shown on a terminal: a spinner per unit with elapsed time. */
import type { Reporter } from '../exec/context.js';
import type { UnitProgress } from '../db/ledger.js';
import type { Output, Spinner } from './output.js';
import { withThousands } from '../numbers.js';

export function terminalReporter(out: Output, options: { dryRun?: boolean } = {}): Reporter {
  const { style } = out;
  let spinner: Spinner | undefined;
  let pending: Promise<Spinner> | undefined;
  /** A spinner started and not yet ended by the unit's outcome. */
  let turning = false;
  let started = 0;
  let lastPlainProgress = 0;
  const seconds = (ms: number): string => style.dim(`${(ms / 1000).toFixed(1)}s`);
  const elapsed = (): string => seconds(performance.now() - started);
  return {
    unitStarted(entry) {
      started = performance.now();
      const resume = entry.resume.kind === 'start' ? '' : style.yellow(' (resuming)');
      const text = `${entry.unit.id}${resume}`;
      // A unit shown again (it runs alone after the message that carried it failed): its spinner takes the old one's place.
      if (turning) void pending?.then((s) => s.stop());
      turning = true;
      pending = out.spinner(text);
      void pending.then((s) => (spinner = s));
    },
    unitProgress(unit, progress) {
      const text = `${unit.id} ${formatProgress(progress)} ${elapsed()}`;
      if (spinner) spinner.update(text);
      if (!process.stderr.isTTY && performance.now() - lastPlainProgress > 2000) {
        lastPlainProgress = performance.now();
        out.log(`  ${text}`);
      }
    },
    unitDone(unit, outcome) {
      const checks =
        outcome.checks.length > 0 ? style.dim(` ${outcome.checks.length} check${outcome.checks.length === 1 ? '' : 's'} passed`) : '';
      const note = outcome.note ? style.dim(` ${outcome.note}`) : '';
      const text = `${unit.id} ${seconds(outcome.durationMs)}${note}${checks}${options.dryRun ? style.yellow(' (dry run)') : ''}`;
      turning = false;
      void pending?.then((s) => s.succeed(text));
    },
    unitFailed(unit, message) {
      turning = false;
      void pending?.then((s) => s.fail(`${unit.id} ${elapsed()} ${style.red(message.split('\n')[0] ?? '')}`));
    },
    note(text) {
      out.log(style.dim(text));
    },
  };
}

/**
 * A backfill's progress. The total is the planner's estimate of the table's rows (reltuples),
 * not a count, so it is shown as one (`~`); once the rows done pass it, only they are shown.
 */
export function formatProgress(progress: UnitProgress): string {
  const done = progress.rowsDone ?? 0;
  const total = progress.rowsTotal ?? 0;
  const estimated = total > 0 && done <= total;
  const pct = estimated ? `, ${Math.min(100, Math.round((done / total) * 100))}%` : '';
  const rate = progress.rowsPerSecond ? `, ${withThousands(progress.rowsPerSecond)} rows/s` : '';
  const eta = progress.rowsPerSecond && estimated && total > done ? `, ETA ~${Math.ceil((total - done) / progress.rowsPerSecond)}s` : '';
  const of = estimated ? ` of ~${withThousands(total)}` : '';
  const throttled = progress.throttled ? `; throttled: ${progress.throttled}` : '';
  return `${withThousands(done)}${of} rows${estimated ? ' (estimated total)' : ''}${pct}${rate}${eta}${throttled}`;
}

/** For --json runs: progress lines go to stderr, nothing else. */
export function quietReporter(out: Output): Reporter {
  return {
    unitStarted: (entry) => out.log(`${entry.unit.id}: running`),
    unitProgress: () => {},
    unitDone: (unit, o) => out.log(`${unit.id}: applied in ${o.durationMs} ms`),
    unitFailed: (unit, message) => out.log(`${unit.id}: failed: ${message.split('\n')[0]}`),
    note: (text) => out.log(text),
  };
}
