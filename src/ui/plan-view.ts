/** `plan` and `status`: the same units, as a table or as the contract's JSON. */
import Table from 'cli-table3';
import { doneCount } from '../plan/done-statements.js';
import type { Inspection } from '../app/inspect.js';
import { describeSnapshot, type PlanEntry } from '../plan/planner.js';
import type { LedgerRun } from '../db/ledger.js';
import { orderLabel, type UnitOptions } from '../plan/types.js';
import type { Output } from './output.js';
import type { Finding } from '../lint/types.js';
import { findingJson } from './lint-view.js';
import { formatProgress } from './reporter.js';

export function unitJson(entry: PlanEntry) {
  const { unit, ledger } = entry;
  return {
    id: unit.id,
    kind: unit.kind,
    file: unit.file,
    status: entry.status,
    checksum: unit.checksum,
    appliedAt: ledger?.appliedAt?.toISOString() ?? null,
    drift: entry.drift,
    ...(entry.drift ? { driftReason: entry.driftReason } : {}),
    transaction: unit.options.transaction,
    /** The effective lock timeout (the default when nothing sets one); null: no limit. */
    lockTimeoutMs: unit.options.lockTimeoutMs ?? null,
    statementTimeoutMs: unit.options.statementTimeoutMs ?? null,
    retries: unit.options.retries,
    batch: unit.options.batch ?? null,
    snapshot: describeSnapshot(unit),
    rollback: unit.rollback?.file ?? null,
    checks: { precheck: unit.prechecks.length, verify: unit.verifies.length },
    durationMs: ledger?.durationMs ?? null,
    progress: ledger && Object.keys(ledger.progress).length > 0 ? ledger.progress : null,
    error: ledger?.error ?? null,
    willRun: entry.action === 'run',
    resume: entry.resume,
    warnings: entry.warnings,
  };
}

function runJson(run: LedgerRun | undefined) {
  if (!run) return null;
  return {
    id: run.id,
    command: run.command,
    user: run.dbUser,
    host: run.clientHost,
    pid: run.clientPid,
    toolVersion: run.toolVersion,
    startedAt: run.startedAt.toISOString(),
    finishedAt: run.finishedAt?.toISOString() ?? null,
    outcome: run.outcome,
    exitCode: run.exitCode,
  };
}

export function inspectionJson(inspection: Inspection, findings?: Finding[]) {
  const { plan } = inspection;
  const count = (status: string) => plan.entries.filter((e) => e.status === status).length;
  return {
    directory: inspection.project.directory,
    database: inspection.database ?? null,
    ledger: { schema: inspection.ledger.schema, exists: inspection.ledger.exists, version: inspection.ledger.version ?? null },
    units: plan.entries.map(unitJson),
    missing: plan.missing.map((row) => ({ id: row.id, file: row.file, status: row.status, checksum: row.checksum })),
    summary: {
      total: plan.entries.length,
      applied: count('applied'),
      pending: count('pending'),
      running: count('running'),
      failed: count('failed'),
      rolledBack: count('rolled_back'),
      drifted: plan.drifted.length,
      toRun: plan.toRun.length,
    },
    lastRun: runJson(inspection.lastRun),
    activeRun: runJson(inspection.active),
    ...(findings ? { findings: findings.map(findingJson) } : {}),
  };
}

export function renderUnitsTable(out: Output, inspection: Inspection, mode: 'plan' | 'status', findings?: Finding[]): void {
  const { style } = out;
  const head =
    mode === 'plan'
      ? ['#', 'unit', 'kind', 'status', 'tx', 'lock wait', 'snapshot', 'notes']
      : ['#', 'unit', 'kind', 'status', 'applied at', 'took', 'progress / error'];
  const lint = findings ? lintCells(out, findings) : undefined;
  const widths = [...(mode === 'plan' ? [6, 36, 11, 13, 7, 18, 28, 40] : [6, 40, 11, 13, 21, 9, 44]), ...(lint ? [40] : [])];
  const table = new Table({
    head: [...head, ...(lint ? ['lint'] : [])].map((h) => style.bold(h)),
    style: { head: [], border: [] },
    ...out.tableLayout(widths),
  });
  for (const entry of inspection.plan.entries) {
    const { unit, ledger } = entry;
    const status = statusText(out, entry);
    if (mode === 'plan') {
      const notes = [...(entry.drift ? [style.red(`DRIFT: ${entry.driftReason}`)] : []), ...entry.warnings.map((w) => style.yellow(w))];
      const tx = unit.options.batch ? 'batch' : unit.options.transaction ? 'yes' : style.yellow('off');
      table.push([
        orderLabel(unit),
        unit.id,
        unit.kind,
        status,
        tx,
        describeLockWait(unit.options),
        describeSnapshot(unit),
        notes.join('\n'),
        ...(lint ? [lint.get(unit.id) ?? ''] : []),
      ]);
    } else {
      const appliedAt = ledger?.appliedAt ? ledger.appliedAt.toISOString().replace('T', ' ').slice(0, 19) : '';
      const took = ledger?.durationMs != null ? `${(ledger.durationMs / 1000).toFixed(2)}s` : '';
      const reverted =
        entry.status === 'applied' ? doneCount(ledger?.progress.revertStatements ?? ledger?.progress.revertStatementsDone) : 0;
      const done = doneCount(ledger?.progress.statements ?? ledger?.progress.statementsDone);
      const info =
        reverted > 0
          ? style.yellow(
              `rollback stopped part-way: ${reverted} of ${unit.rollback?.statements.length ?? '?'} rollback statements done; \`tenantify rollback\` resumes it`,
            )
          : ledger?.error
            ? style.red(ledger.error.message.split('\n')[0] ?? '')
            : ledger?.progress.rowsDone !== undefined && entry.status !== 'applied'
              ? formatProgress(ledger.progress)
              : done > 0 && entry.status !== 'applied'
                ? `${done} of ${unit.statements.length} statements done`
                : entry.drift
                  ? style.red('DRIFT')
                  : '';
      table.push([orderLabel(unit), unit.id, unit.kind, status, appliedAt, took, info]);
    }
  }
  out.line(table.toString());
}

/** Per unit: its findings as `rule (lines 9, 10)`, a rollback's marked, allowed ones dimmed. */
function lintCells(out: Output, findings: Finding[]): Map<string, string> {
  const { style } = out;
  const groups = new Map<string, { unit: string; finding: Finding; lines: number[] }>();
  for (const f of findings) {
    const key = `${f.unit}\0${f.file}\0${f.rule}\0${f.allowed}`;
    const group = groups.get(key) ?? { unit: f.unit, finding: f, lines: [] };
    group.lines.push(f.line);
    groups.set(key, group);
  }
  const cells = new Map<string, string[]>();
  for (const { unit, finding: f, lines } of groups.values()) {
    const where = `${f.file.startsWith('rollbacks/') ? 'rollback ' : ''}line${lines.length > 1 ? 's' : ''} ${lines.join(', ')}`;
    const text = f.allowed
      ? style.dim(`${f.rule} (${where}): allowed`)
      : (f.level === 'error' ? style.red : style.yellow)(`${f.rule} (${where})`);
    cells.set(unit, [...(cells.get(unit) ?? []), text]);
  }
  return new Map([...cells].map(([unit, lines]) => [unit, lines.join('\n')]));
}

function statusText(out: Output, entry: PlanEntry): string {
  const { style } = out;
  const label = entry.status === 'failed' && entry.ledger?.error?.code === 'interrupted' ? 'interrupted' : entry.status;
  switch (entry.status) {
    case 'applied':
      return style.green(label);
    case 'failed':
      return style.red(label);
    case 'running':
      return style.yellow(label);
    case 'rolled_back':
      return style.magenta(label);
    default:
      return style.dim(label);
  }
}

export function describeRun(run: LedgerRun): string {
  const when = run.startedAt.toISOString().replace('T', ' ').slice(0, 19);
  const end = run.finishedAt
    ? `${run.outcome ?? 'finished'} (exit ${run.exitCode ?? '?'})`
    : 'not finished: running now, or it died (the next apply closes it and resumes)';
  return `run ${run.id}: \`tenantify ${run.command}\` by ${run.dbUser} on ${run.clientHost} (pid ${run.clientPid}), started ${when} UTC, ${end}`;
}

/** The lock timeout a unit runs with, and its retries: `500ms, 3 retries`, or `no limit`. */
export function describeLockWait(options: UnitOptions): string {
  if (options.lockTimeoutMs === undefined) return 'no limit';
  const ms = options.lockTimeoutMs;
  const text =
    ms % 3_600_000 === 0 && ms > 0
      ? `${ms / 3_600_000}h`
      : ms % 60_000 === 0 && ms > 0
        ? `${ms / 60_000}min`
        : ms % 1000 === 0 && ms > 0
          ? `${ms / 1000}s`
          : `${ms}ms`;
  return options.retries > 0 ? `${text}, ${options.retries} retr${options.retries === 1 ? 'y' : 'ies'}` : text;
}
