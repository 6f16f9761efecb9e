/**
 * The lock trace (rehearse, apply --dry-run): which locks a unit's transaction took on the
 * database's existing tables and indexes, and for how long each was held. After each
 * statement of the unit the backend's own rows of pg_locks are read; a lock is held from the
 * start of the statement after which it first appears to the unit's commit (a lock is only
 * ever released at commit or rollback). Relations the unit created itself are left out:
 * nobody else sees them before the commit, so their locks block nobody. Nor are the
 * catalog's, the ledger's, or the backend's transaction id locks.
 *
 * Tracing costs two catalog queries per statement, so only a rehearsal or a dry run traces
 * (ExecContext.traceLocks); a unit that commits as it goes (`transaction off`, a batched
 * backfill) is not traced: its locks last one statement or one batch each.
 */
import type pg from 'pg';
import type { ExecContext, LockHeld, Runner, Work } from './context.js';
import type { CheckResult } from './failure.js';
import { inTransaction, runStatement } from './steps.js';
import { withThousands } from '../numbers.js';

export type { LockHeld } from './context.js';

/** Lock modes from weakest to strongest, as pg_locks names them. */
const modes = [
  'AccessShareLock',
  'RowShareLock',
  'RowExclusiveLock',
  'ShareUpdateExclusiveLock',
  'ShareLock',
  'ShareRowExclusiveLock',
  'ExclusiveLock',
  'AccessExclusiveLock',
];

/** A mode as the documentation names it: AccessExclusiveLock → ACCESS EXCLUSIVE. */
export function lockModeName(mode: string): string {
  return mode
    .replace(/Lock$/, '')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toUpperCase();
}

/** Stronger locks block more: ACCESS EXCLUSIVE (8) blocks even reads, SHARE (5) blocks writes. */
export function lockStrength(mode: string): number {
  return modes.indexOf(mode) + 1;
}

/**
 * What a reader needs of a unit's locks: per relation its strongest lock, strongest first
 * (tables before their indexes, then the longest), as "ACCESS EXCLUSIVE on public.users for 640 ms".
 */
export function describeLocks(locks: LockHeld[]): string[] {
  const strongest = new Map<string, LockHeld>();
  for (const lock of locks) {
    const known = strongest.get(lock.relation);
    if (!known || lockStrength(lock.mode) > lockStrength(known.mode)) strongest.set(lock.relation, lock);
  }
  return [...strongest.values()]
    .sort(
      (a, b) =>
        lockStrength(b.mode) - lockStrength(a.mode) ||
        b.kind.localeCompare(a.kind) ||
        b.heldMs - a.heldMs ||
        a.relation.localeCompare(b.relation),
    )
    .map(
      (l) =>
        `${lockModeName(l.mode)} on ${l.relation} for ${l.heldMs} ms${l.rewroteRows !== undefined ? ` (rewrote ${withThousands(l.rewroteRows)} rows)` : ''}`,
    );
}

/** One line for a unit: its strongest locks, or why there are none. */
export function lockSummary(locks: LockHeld[] | undefined, max = 3): string {
  if (locks === undefined) return 'not traced (commits as it goes: each lock lasts one statement or batch)';
  const lines = describeLocks(locks);
  if (lines.length === 0) return 'no lock on an existing table or index';
  return lines.length > max ? `${lines.slice(0, max).join(', ')} and ${lines.length - max} more` : lines.join(', ');
}

/** Relations outside the catalog (pg_catalog, pg_toast, temporary schemas), information_schema and the ledger. */
const userRelation = `c.relkind IN ('r', 'p', 'm', 'i', 'I') AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname NOT IN ('information_schema', $1)`;

const relationsQuery = `SELECT c.oid::text AS oid, c.relfilenode::text AS filenode
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE ${userRelation}`;

const locksQuery = `SELECT c.oid::text AS oid, format('%I.%I', n.nspname, c.relname) AS relation, c.relkind, l.mode, c.relfilenode::text AS filenode
  FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND ${userRelation}`;

interface LockRow {
  oid: string;
  relation: string;
  relkind: string;
  mode: string;
  filenode: string;
}

/** One unit's trace, for one attempt of its transaction. */
export class LockTrace {
  /** The relations that existed when the unit began, and their files. */
  private existing = new Map<string, string>();
  /** Locks held before the unit began: an earlier unit's, in a dry run's outer transaction. */
  private before = new Set<string>();
  private readonly seen = new Map<string, { row: LockRow; since: number }>();

  constructor(
    private readonly client: pg.ClientBase,
    private readonly ledgerSchema: string,
  ) {}

  /** Inside the unit's transaction, before its body. */
  async start(): Promise<void> {
    const relations = await this.client.query<{ oid: string; filenode: string }>(relationsQuery, [this.ledgerSchema]);
    this.existing = new Map(relations.rows.map((r) => [r.oid, r.filenode]));
    const held = await this.client.query<LockRow>(locksQuery, [this.ledgerSchema]);
    this.before = new Set(held.rows.map((r) => `${r.oid} ${r.mode}`));
  }

  /** After a statement that started at `since`: the locks it took first appear now. */
  async observe(since: number): Promise<void> {
    const held = await this.client.query<LockRow>(locksQuery, [this.ledgerSchema]);
    for (const row of held.rows) {
      const key = `${row.oid} ${row.mode}`;
      if (this.before.has(key) || !this.existing.has(row.oid)) continue;
      const known = this.seen.get(key);
      this.seen.set(key, { row, since: known?.since ?? since });
    }
  }

  /** After the commit at `committedAt`: each lock and how long it was held; a rewritten table's rows, counted. */
  async finish(committedAt: number): Promise<LockHeld[]> {
    const locks: LockHeld[] = [];
    const counted = new Map<string, number>();
    for (const { row, since } of this.seen.values()) {
      const rewritten = (row.relkind === 'r' || row.relkind === 'm') && row.filenode !== this.existing.get(row.oid);
      if (rewritten && !counted.has(row.relation)) {
        const count = await this.client.query<{ n: string }>(`SELECT count(*) AS n FROM ${row.relation}`);
        counted.set(row.relation, Number(count.rows[0]?.n ?? 0));
      }
      const rows = counted.get(row.relation);
      locks.push({
        relation: row.relation,
        kind: row.relkind === 'i' || row.relkind === 'I' ? 'index' : 'table',
        mode: row.mode,
        heldMs: Math.max(0, Math.round(committedAt - since)),
        ...(rewritten && rows !== undefined ? { rewroteRows: rows } : {}),
      });
    }
    return locks.sort((a, b) => lockStrength(b.mode) - lockStrength(a.mode) || a.relation.localeCompare(b.relation));
  }
}

/**
 * A unit's transaction, traced: begin → body (an SQL unit statement by statement, looking at
 * its locks after each; a TypeScript unit as a whole) → verify and record → commit.
 */
export async function tracedTransaction(
  ctx: ExecContext,
  work: Work,
  runner: Runner,
  verifyAndRecord: () => Promise<CheckResult[]>,
): Promise<{ note: string | undefined; checks: CheckResult[]; locks: LockHeld[] }> {
  const { script } = work;
  const trace = new LockTrace(ctx.session.client, ctx.ledger.schema);
  const { note, checks } = await inTransaction(ctx, script.options, async () => {
    await trace.start();
    let note: string | undefined;
    if (runner.name === 'transactional') {
      for (const statement of script.statements) {
        // The trace has looked at the locks (and a dry run's transaction has run its own queries) by now, and PostgreSQL
        // changes a transaction's isolation only before its first query: the unit runs at the transaction's own.
        if (/^SET\s+TRANSACTION\s+ISOLATION\b/i.test(statement.sql)) {
          ctx.reporter.note(
            `${script.id}: "${statement.sql}" left out while locks are traced (a dry run): its statements read at the run's isolation`,
          );
          continue;
        }
        const started = performance.now();
        await runStatement(ctx, script, statement);
        await trace.observe(started);
      }
    } else {
      const started = performance.now();
      note = await runner.body(ctx, work);
      await trace.observe(started);
    }
    // The verify's reads lock too, until the commit: just before it, the last look.
    const verifyStarted = performance.now();
    const checks = await verifyAndRecord();
    await trace.observe(verifyStarted);
    return { note, checks };
  });
  return { note, checks, locks: await trace.finish(performance.now()) };
}
