/**
 * The pure planner: from the units on disk and the ledger's rows, what runs, what resumes
 * where, and what has drifted. No I/O: every rule here is tested without a database.
 */
import { UsageError } from '../errors.js';
import type { LedgerUnit, UnitProgress } from './ledger-rows.js';
import { doneCount, startsWithDone, type DoneDigest } from './done-statements.js';
import { compareOrder, firstStatements, type Script, type Unit, type UnitStatus } from './types.js';

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

export function planRun(units: Unit[], ledgerRows: LedgerRow[], options: PlanOptions = {}): Plan {
  const byId = new Map(ledgerRows.map((row) => [row.id, row]));
  if (options.to !== undefined && !units.some((u) => u.id === options.to)) {
    throw new UsageError(`--to ${options.to}: no such unit in the plan`, {
      code: 'unit-not-found',
      hint: `units are named by file name without extension, e.g. ${units[0]?.id ?? '0001_create_organizations'}`,
    });
  }
  const highestApplied = units.reduce<Unit | undefined>((max, u) => {
    const row = byId.get(u.id);
    return row?.status === 'applied' && (max === undefined || compareOrder(u, max) > 0) ? u : max;
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

/**
 * A ledger row as read: a ledger that records each unit's statements fingerprint (see
 * fingerprint.ts) has it here, and then only a change of statements is drift.
 */
export type LedgerRow = LedgerUnit & { fingerprint?: string | null | undefined };

/** The file changed, but not what it runs: comments, whitespace, line endings or a BOM. */
export function isCosmeticChange(unit: Unit, row: LedgerRow): boolean {
  return (
    row.checksum !== unit.checksum &&
    typeof row.fingerprint === 'string' &&
    unit.fingerprint !== undefined &&
    row.fingerprint === unit.fingerprint
  );
}

function driftOf(unit: Unit, row: LedgerRow | undefined): { drift: boolean; reason: string | undefined } {
  if (!row || row.checksum === unit.checksum) return { drift: false, reason: undefined };
  if (row.status === 'applied') {
    if (isCosmeticChange(unit, row)) return { drift: false, reason: undefined };
    return { drift: true, reason: `applied with checksum ${row.checksum.slice(0, 12)}, the file now has ${unit.checksum.slice(0, 12)}` };
  }
  // A non-transactional unit that is partly done must not change under its done statements
  // (unless they all ran and its verify failed: editing it is how it is fixed, see resumePoint;
  // a streamed unit's progress cannot say which statement changed, so there too).
  const done = recordedDone(unit, row.progress.statements, row.progress.statementsDone);
  const fixable = verifyFailedAfterStatements(unit, row) && Array.isArray(done);
  if (done !== undefined && !fixable && !startsWithDone(unit.statements, done)) {
    return {
      drift: true,
      reason: `${doneCount(done)} of its statements ran before the file changed; the changed file no longer starts with them`,
    };
  }
  return { drift: false, reason: undefined };
}

/** The statements a `transaction off` script ran, as recorded; undefined when none. */
function recordedDone(script: Script, list: string[] | undefined, digest: DoneDigest | undefined): string[] | DoneDigest | undefined {
  if (script.options.transaction) return undefined;
  const done = list ?? digest;
  return doneCount(done) > 0 ? done : undefined;
}

function resumePoint(unit: Unit, row: LedgerUnit | undefined): Resume {
  if (!row || row.status === 'applied' || row.status === 'rolled_back' || row.status === 'pending') return { kind: 'start' };
  const progress: UnitProgress = row.progress;
  const done = recordedDone(unit, progress.statements, progress.statementsDone);
  if (done !== undefined) {
    if (Array.isArray(done) && verifyFailedAfterStatements(unit, row)) return { kind: 'statement', statement: unchangedPrefix(unit, done) };
    return { kind: 'statement', statement: doneCount(done) };
  }
  if (unit.options.batch && (progress.cursor !== undefined || progress.segments !== undefined)) {
    const cursor = progress.cursor ?? (progress.segments ?? []).map((s) => s.cursor).join(', ');
    return { kind: 'cursor', cursor, rowsDone: progress.rowsDone ?? 0 };
  }
  return { kind: 'start' };
}

/**
 * A `transaction off` unit whose statements all ran and whose verify then failed (an index
 * skipped by IF NOT EXISTS because its name was taken...). Its fix is an edit of the unit, or
 * of the data: the next apply runs again the statements from the first one that changed
 * (none: only the verify), so the unit is never stuck on statements recorded as done.
 */
function verifyFailedAfterStatements(unit: Unit, row: LedgerUnit): boolean {
  return !unit.options.transaction && row.status === 'failed' && row.error?.code === 'verify_failed';
}

/** How many of the unit's first statements are the ones recorded as done. */
function unchangedPrefix(unit: Unit, done: string[]): number {
  let same = 0;
  for (const statement of firstStatements(unit.statements, done.length)) {
    if (statement.hash !== done[same]) break;
    same++;
  }
  return same;
}

function warningsFor(unit: Unit, row: LedgerRow | undefined, highestApplied: Unit | undefined): string[] {
  const warnings: string[] = [];
  if (row?.status !== 'applied' && highestApplied !== undefined && compareOrder(unit, highestApplied) < 0) {
    warnings.push('out of order: a later unit is already applied; this one runs after it');
  }
  if (!unit.options.transaction)
    warnings.push('runs outside a transaction: statement by statement, each recorded, resumed at the first not done');
  if (!unit.rollback) warnings.push('no rollback file');
  if (row?.status === 'applied' && isCosmeticChange(unit, row))
    warnings.push('edited since applied, statements unchanged (comments, whitespace or line endings): not drift');
  if (row?.status === 'running') warnings.push('left running by a run that died: it runs again from its last recorded point');
  if (row?.status === 'failed' && row.error) warnings.push(`failed last time: ${row.error.message.split('\n')[0]}`);
  return warnings;
}

/** A short description of a unit's snapshot scope, for `plan`. */
export function describeSnapshot(unit: Unit): string {
  const scope = unit.options.snapshot;
  switch (scope.kind) {
    case 'default':
      return unit.writes.length > 0
        ? `rows or columns changed: ${unit.writes.join(', ')}`
        : 'none needed (changes no existing row or column: the rollback file reverts it)';
    case 'tables':
      return `tables: ${scope.tables.join(', ')}`;
    default:
      return scope.kind;
  }
}

export interface RollbackEntry {
  unit: Unit;
  ledger: LedgerUnit;
  /** Failed or left running part-way (batches or statements committed): its rollback undoes that part. */
  partial: boolean;
  /** A rollback outside a transaction resumes at the first statement an earlier attempt did not finish. */
  resume: { kind: 'start' } | { kind: 'statement'; statement: number };
  /** Why this unit cannot be reverted with its rollback file, when it cannot. */
  problem: string | undefined;
  /** The rollback file changed under the statements an earlier attempt already ran. */
  driftReason: string | undefined;
}

export interface RollbackPlan {
  /** Newest first: the reverse of the order in which they were applied. */
  toRevert: RollbackEntry[];
  /** Done (or partly done) units that stay as they are. */
  kept: RollbackEntry[];
}

export interface RollbackOptions {
  /** Revert this many units. */
  steps?: number | undefined;
  /** Revert the units applied after this one; it stays applied. */
  to?: string | undefined;
}

/**
 * What a rollback reverts: applied units (and a partly done one, whose committed batches or
 * statements would otherwise outlive the units they depend on), newest first by the time
 * they were applied, so out-of-order applies are undone in exactly the reverse order.
 */
export function planRollback(units: Unit[], ledgerRows: LedgerUnit[], options: RollbackOptions = {}): RollbackPlan {
  if (options.steps !== undefined && options.to !== undefined)
    throw new UsageError('pass --steps or --to, not both', { code: 'option-conflict' });
  const byId = new Map(ledgerRows.map((row) => [row.id, row]));
  const done = units
    .map((unit) => ({ unit, row: byId.get(unit.id) }))
    .filter((x): x is { unit: Unit; row: LedgerUnit } => x.row !== undefined && (x.row.status === 'applied' || isPartlyDone(x.unit, x.row)))
    .sort((a, b) => newestFirst(a, b))
    .map(({ unit, row }) => rollbackEntry(unit, row));
  const count = revertCount(done, units, options);
  return { toRevert: done.slice(0, count), kept: done.slice(count) };
}

function revertCount(done: RollbackEntry[], units: Unit[], options: RollbackOptions): number {
  if (options.steps !== undefined) {
    if (options.steps > done.length) {
      throw new UsageError(`--steps ${options.steps}: only ${done.length} unit${done.length === 1 ? ' is' : 's are'} applied`, {
        code: 'steps-too-many',
        hint: `pass --steps ${done.length}, or leave --steps out to revert them all`,
      });
    }
    return options.steps;
  }
  if (options.to === undefined) return done.length;
  const index = done.findIndex((e) => e.unit.id === options.to);
  if (index === -1) {
    const known = units.some((u) => u.id === options.to);
    throw new UsageError(`--to ${options.to}: ${known ? 'that unit is not applied' : 'no such unit in the plan'}`, {
      code: known ? 'unit-not-applied' : 'unit-not-found',
      hint: `--to names the unit that stays applied: one of ${done.map((e) => e.unit.id).join(', ') || '(none: nothing is applied)'}`,
    });
  }
  return index;
}

function isPartlyDone(unit: Unit, row: LedgerUnit): boolean {
  if (row.status !== 'failed' && row.status !== 'running') return false;
  const statementsDone = recordedDone(unit, row.progress.statements, row.progress.statementsDone) !== undefined;
  const batchesDone = unit.options.batch !== undefined && (row.progress.cursor !== undefined || row.progress.segments !== undefined);
  return statementsDone || batchesDone;
}

function newestFirst(a: { unit: Unit; row: LedgerUnit }, b: { unit: Unit; row: LedgerUnit }): number {
  const at = (row: LedgerUnit): number => (row.appliedAt ?? row.updatedAt).getTime();
  if (at(a.row) !== at(b.row)) return at(b.row) - at(a.row);
  return compareOrder(b.unit, a.unit);
}

function rollbackEntry(unit: Unit, row: LedgerUnit): RollbackEntry {
  const entry: RollbackEntry = {
    unit,
    ledger: row,
    partial: row.status !== 'applied',
    resume: { kind: 'start' },
    problem: undefined,
    driftReason: undefined,
  };
  const script = unit.rollback;
  if (!script) return { ...entry, problem: `no rollback file: write rollbacks/${unit.id}.sql` };
  // A batched rollback keeps no cursor (the unit's progress is the apply's): run again, it walks from the first key.
  if (script.options.batch) return entry;
  const done = recordedDone(script, row.progress.revertStatements, row.progress.revertStatementsDone);
  if (done === undefined) return entry;
  if (!startsWithDone(script.statements, done)) {
    return {
      ...entry,
      driftReason: `${doneCount(done)} of its statements ran before ${script.file} changed; the changed file no longer starts with them`,
    };
  }
  return { ...entry, resume: { kind: 'statement', statement: doneCount(done) } };
}
