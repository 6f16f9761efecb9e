/**
 * The pure planner: from the units on disk and the ledger's rows, what runs, what resumes
 * where, and what has drifted. No I/O: every rule here is tested without a database.
 */
import { UsageError } from '../errors.js';
import type { LedgerUnit, UnitProgress } from '../db/ledger.js';
import type { Unit, UnitStatus } from './types.js';

export type Resume =
  | { kind: 'start' }
  /** Non-transactional: statements [0, statement) are done. */
  | { kind: 'statement'; statement: number }
  /** Batched: keys up to `cursor` are done. */
  | { kind: 'cursor'; cursor: string; rowsDone: number };

export interface PlanEntry {
  unit: Unit;
  status: UnitStatus;
  ledger: LedgerUnit | undefined;
  drift: boolean;
  /** Why the unit counts as drifted, when it does. */
  driftReason: string | undefined;
  /** In this run: run it (from `resume`), or leave it. */
  action: 'run' | 'skip';
  resume: Resume;
  warnings: string[];
}

export interface Plan {
  entries: PlanEntry[];
  toRun: PlanEntry[];
  drifted: PlanEntry[];
  /** Applied in the ledger, but their file is gone from the plan. */
  missing: LedgerUnit[];
}

export interface PlanOptions {
  /** Stop after this unit id. */
  to?: string | undefined;
}

export function planRun(units: Unit[], ledgerRows: LedgerUnit[], options: PlanOptions = {}): Plan {
  const byId = new Map(ledgerRows.map((row) => [row.id, row]));
  if (options.to !== undefined && !units.some((u) => u.id === options.to)) {
    throw new UsageError(`--to ${options.to}: no such unit in the plan`, `units are named by file name without extension, e.g. ${units[0]?.id ?? '0001_create_organizations'}`);
  }
  const highestApplied = units.reduce<bigint | undefined>((max, u) => {
    const row = byId.get(u.id);
    return row?.status === 'applied' && (max === undefined || u.prefix > max) ? u.prefix : max;
  }, undefined);

  let pastTarget = false;
  const entries = units.map((unit): PlanEntry => {
    const row = byId.get(unit.id);
    const status: UnitStatus = row?.status ?? 'pending';
    const { drift, reason } = driftOf(unit, row);
    const resume = resumePoint(unit, row);
    const warnings = warningsFor(unit, row, highestApplied);
    const action = !pastTarget && status !== 'applied' ? 'run' : 'skip';
    if (unit.id === options.to) pastTarget = true;
    return { unit, status, ledger: row, drift, driftReason: reason, action, resume, warnings };
  });
  const known = new Set(units.map((u) => u.id));
  const missing = ledgerRows.filter((row) => !known.has(row.id) && row.status === 'applied');
  return {
    entries,
    toRun: entries.filter((e) => e.action === 'run'),
    drifted: entries.filter((e) => e.drift),
    missing,
  };
}

function driftOf(unit: Unit, row: LedgerUnit | undefined): { drift: boolean; reason: string | undefined } {
  if (!row || row.checksum === unit.checksum) return { drift: false, reason: undefined };
  if (row.status === 'applied') return { drift: true, reason: `applied with checksum ${row.checksum.slice(0, 12)}, the file now has ${unit.checksum.slice(0, 12)}` };
  // A non-transactional unit that is partly done must not change under its done statements.
  const done = row.progress.statements ?? [];
  if (!unit.options.transaction && done.length > 0) {
    const now = unit.statements.slice(0, done.length).map((s) => s.hash);
    if (now.length !== done.length || now.some((hash, i) => hash !== done[i])) {
      return { drift: true, reason: `${done.length} of its statements ran before the file changed; the changed file no longer starts with them` };
    }
  }
  return { drift: false, reason: undefined };
}

function resumePoint(unit: Unit, row: LedgerUnit | undefined): Resume {
  if (!row || row.status === 'applied' || row.status === 'rolled_back' || row.status === 'pending') return { kind: 'start' };
  const progress: UnitProgress = row.progress;
  if (!unit.options.transaction && progress.statements && progress.statements.length > 0) {
    return { kind: 'statement', statement: progress.statements.length };
  }
  if (unit.options.batch && progress.cursor !== undefined) {
    return { kind: 'cursor', cursor: progress.cursor, rowsDone: progress.rowsDone ?? 0 };
  }
  return { kind: 'start' };
}

function warningsFor(unit: Unit, row: LedgerUnit | undefined, highestApplied: bigint | undefined): string[] {
  const warnings: string[] = [];
  if (row?.status !== 'applied' && highestApplied !== undefined && unit.prefix < highestApplied) {
    warnings.push('out of order: a later unit is already applied; this one runs after it');
  }
  if (!unit.options.transaction) warnings.push('runs outside a transaction: statement by statement, each recorded, resumed at the first not done');
  if (!unit.rollback) warnings.push('no rollback file');
  if (row?.status === 'running') warnings.push('left running by a run that died: it runs again from its last recorded point');
  if (row?.status === 'failed' && row.error) warnings.push(`failed last time: ${row.error.message.split('\n')[0]}`);
  return warnings;
}

/** A short description of a unit's snapshot scope, for `plan`. */
export function describeSnapshot(unit: Unit): string {
  const scope = unit.options.snapshot;
  switch (scope.kind) {
    case 'default':
      return unit.writes.length > 0 ? `tables written: ${unit.writes.join(', ')}` : 'none needed (writes no existing table)';
    case 'tables':
      return `tables: ${scope.tables.join(', ')}`;
    default:
      return scope.kind;
  }
}
