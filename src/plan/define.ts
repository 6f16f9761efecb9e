/**
 * The helpers a TypeScript unit default-exports:
 *
 *   export default defineUnit({ async up(db) { await db.schema.createTable('t')...execute() },
 *                               verify: [{ name: 'no orphan', sql: 'SELECT ...' }] });
 *   export default defineBackfill({ table: 'hosts', key: 'id', size: 5000,
 *                                   async batch(db, { from, to }) { ...; return rowsUpdated } });
 *
 * Same semantics as SQL units: `up` runs inside the unit's transaction, `batch` once per key
 * range in its own transaction, and checks are SQL that must return no rows.
 */
import type { Kysely } from 'kysely';
import type pg from 'pg';

export interface UnitContext {
  readonly unitId: string;
  log(message: string): void;
  /** The session's own client (what `db` runs on), for what Kysely does not do: COPY streams. */
  readonly client: pg.ClientBase;
  /**
   * Another session to the same database, for work the unit runs beside its own (the caller
   * closes it). `run(fn)`: what `fn` does on it stops as the unit's own work does on SIGINT
   * (the statement in flight cancelled; refused once a stop was asked).
   */
  connect(purpose: string): Promise<{ client: pg.ClientBase; close(): Promise<void>; run<T>(fn: () => Promise<T>): Promise<T> }>;
  /** The unit's progress, shown as a backfill's is (rows done of a total, rate, ETA). */
  progress(progress: { rowsDone: number; rowsTotal?: number; rowsPerSecond?: number }): void;
}

export interface CheckDefinition {
  name: string;
  /** A SELECT whose rows are violations. */
  sql: string;
}

interface CommonDefinition {
  snapshot?: 'none' | 'schema' | 'full' | string[];
  lockTimeout?: string;
  statementTimeout?: string;
  retries?: number;
  precheck?: CheckDefinition[];
  verify?: CheckDefinition[];
  /** Existing tables the unit writes, for its default snapshot. */
  writes?: string[];
}

export interface UnitDefinitionInput extends CommonDefinition {
  /** Default true. */
  transaction?: boolean;
  /** May return a note for the run's report (shown after the unit, and as `note` in `apply --json`). */
  up(db: Kysely<any>, ctx: UnitContext): Promise<void | string>;
}

export interface KeyRange {
  /** Exclusive lower bound of the key. */
  from: string;
  /** Inclusive upper bound of the key. */
  to: string;
}

export interface BackfillDefinitionInput extends CommonDefinition {
  table: string;
  key: string;
  size?: number;
  /** Runs once per key range; returns the rows it changed. */
  batch(db: Kysely<any>, range: KeyRange, ctx: UnitContext): Promise<number | bigint | void>;
}

export const definitionTag = Symbol.for('tenantify.definition');

export type UnitDefinition =
  | (UnitDefinitionInput & { readonly type: 'unit'; readonly [definitionTag]: true })
  | (BackfillDefinitionInput & { readonly type: 'backfill'; readonly [definitionTag]: true });

export function defineUnit(definition: UnitDefinitionInput): UnitDefinition {
  return { ...definition, type: 'unit', [definitionTag]: true };
}

export function defineBackfill(definition: BackfillDefinitionInput): UnitDefinition {
  return { ...definition, type: 'backfill', [definitionTag]: true };
}

export function isUnitDefinition(value: unknown): value is UnitDefinition {
  return Boolean(value && typeof value === 'object' && (value as Record<symbol, unknown>)[definitionTag] === true);
}
