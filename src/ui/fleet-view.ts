/**
 * `--targets`: the fleet's table (one row per target, where it stands), its JSON, and the
 * progress while it runs: on a terminal, one line per running target (unit, batch progress,
 * ETA) under a fleet summary, redrawn in place; otherwise one line as each target ends.
 */
import { clearScreenDown, cursorTo, moveCursor } from 'node:readline';
import Table from 'cli-table3';
import type { FleetObserver, FleetResult, FleetTargetResult } from '../app/fleet.js';
import type { Target } from '../fleet/targets.js';
import type { Reporter } from '../exec/context.js';
import { redact } from '../db/redact.js';
import type { Output } from './output.js';
import type { UnitProgress } from '../db/ledger.js';
import { withThousands } from '../numbers.js';

/** The contract's `{"targets": [{"name", "status", "applied", "pending", "unit", "error"}]}`, and what the command ran. */
export function fleetJson(result: FleetResult) {
  return {
    exitCode: result.exitCode,
    held: result.held ?? null,
    targets: result.targets.map((t) => ({
      name: t.name,
      status: t.status,
      applied: t.applied,
      pending: t.pending,
      unit: t.unit,
      error: t.error,
      ran: t.ran,
      ...(t.checks ? { checks: t.checks } : {}),
      ...(t.held ? { held: t.held } : {}),
    })),
  };
}

export function renderFleetTable(out: Output, result: FleetResult, ranLabel: string): void {
  const { style } = out;
  const table = new Table({
    head: ['target', 'status', 'applied', 'pending', 'unit', ranLabel, 'error'].map((h) => style.bold(h)),
    style: { head: [], border: [] },
    ...out.tableLayout([20, 14, 9, 9, 28, 10, 60]),
  });
  for (const t of result.targets) {
    table.push([t.name, statusCell(out, t), count(t.applied), count(t.pending), t.unit ?? '', String(t.ran.length), errorCell(t)]);
  }
  out.line(table.toString());
}

export function fleetSummary(out: Output, result: FleetResult): string {
  const { style } = out;
  const by = new Map<string, number>();
  for (const t of result.targets) by.set(t.status, (by.get(t.status) ?? 0) + 1);
  const counts = [...by].map(([status, n]) => `${n} ${status}`).join(', ');
  const why = {
    'canary-failed': 'a canary failed, so no other target was started',
    'stopped-on-error': 'a target failed, so no more were started (--on-error stop)',
    interrupted: 'interrupted: no more targets were started',
  };
  const held = result.held ? `; ${why[result.held]}` : '';
  const text = `${result.targets.length} target${result.targets.length === 1 ? '' : 's'}: ${counts}${held}.`;
  return result.exitCode === 0 ? style.green(text) : style.red(text);
}

function count(n: number | null): string {
  return n === null ? '?' : String(n);
}

function statusCell(out: Output, t: FleetTargetResult): string {
  const { style } = out;
  if (t.status === 'up-to-date') return style.green(t.status);
  if (t.error) return style.red(t.status);
  return style.yellow(t.status);
}

function errorCell(t: FleetTargetResult): string {
  if (t.held) return `not started (${t.held})`;
  if (!t.error) return '';
  return `${t.error.code}: ${t.error.message.split('\n')[0] ?? ''}`;
}

interface Board {
  unit: string;
  progress: string;
  started: number;
}

/**
 * The observer that shows a fleet while it runs. On a terminal (stderr), a board redrawn in
 * place; otherwise quiet but for a line per target that ends. `finish()` clears the board.
 */
export function fleetProgress(out: Output, total: number, options: { live?: boolean } = {}): FleetObserver & { finish(): void } {
  const stream = process.stderr;
  const live = options.live ?? Boolean(stream.isTTY);
  const running = new Map<string, Board>();
  const ended: FleetTargetResult[] = [];
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;

  const clear = (): void => {
    if (drawn === 0) return;
    moveCursor(stream, 0, -drawn);
    cursorTo(stream, 0);
    clearScreenDown(stream);
    drawn = 0;
  };
  const draw = (): void => {
    clear();
    const width = Math.max(40, (stream.columns ?? 100) - 1);
    const failed = ended.filter((t) => t.error).length;
    // Plain lines cut to the terminal's width: a wrapped line would throw off the next redraw.
    const lines = [
      `fleet: ${ended.length} of ${total} done${failed ? `, ${failed} failed` : ''}, ${running.size} running, ${total - ended.length - running.size} waiting`,
      ...[...running].map(
        ([name, b]) =>
          `  ${name}  ${b.unit || 'connecting'}${b.progress ? `  ${b.progress}` : ''}  ${((performance.now() - b.started) / 1000).toFixed(0)}s`,
      ),
    ].map((line) => redact(line).slice(0, width));
    stream.write(`${[out.style.bold(lines[0] ?? ''), ...lines.slice(1)].join('\n')}\n`);
    drawn = lines.length;
  };
  /** A line above the board. */
  const say = (text: string): void => {
    if (live) clear();
    out.log(text);
    if (live) draw();
  };
  if (live) {
    timer = setInterval(draw, 250);
    timer.unref();
  }

  return {
    started(target: Target) {
      running.set(target.name, { unit: '', progress: '', started: performance.now() });
    },
    reporter(target: Target): Reporter {
      const board = (): Board | undefined => running.get(target.name);
      return {
        unitStarted: (entry) => Object.assign(board() ?? {}, { unit: entry.unit.id, progress: '' }),
        unitProgress: (_unit, progress) => Object.assign(board() ?? {}, { progress: compactProgress(progress) }),
        unitDone: () => {},
        unitFailed: () => {},
        note: (text) => {
          if (live) say(out.style.dim(`${target.name}: ${text}`));
        },
      };
    },
    ended(result: FleetTargetResult) {
      running.delete(result.name);
      ended.push(result);
      const what = result.error ? `${result.status} (${result.error.code})` : result.status;
      const where = result.unit ? ` at ${result.unit}` : '';
      say(`${result.name}: ${what}${where}, ${result.ran.length} ran`);
    },
    note(target: Target | undefined, text: string) {
      say(target ? `${target.name}: ${text}` : text);
    },
    finish() {
      if (timer) clearInterval(timer);
      if (live) clear();
    },
  };
}

/** A backfill's progress in a board line's room: `1,024/~3,000 rows 34%, 800 rows/s, ETA ~3s` (the total is the planner's estimate). */
export function compactProgress(progress: UnitProgress): string {
  const done = progress.rowsDone ?? 0;
  const total = progress.rowsTotal ?? 0;
  const estimated = total > 0 && done <= total;
  const n = withThousands;
  const rate = progress.rowsPerSecond ? `, ${n(progress.rowsPerSecond)} rows/s` : '';
  const eta = progress.rowsPerSecond && estimated && total > done ? `, ETA ~${Math.ceil((total - done) / progress.rowsPerSecond)}s` : '';
  return `${n(done)}${estimated ? `/~${n(total)} rows ${Math.min(100, Math.round((done / total) * 100))}%` : ' rows'}${rate}${eta}`;
}
