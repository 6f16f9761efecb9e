/**
 * A unit's statements fingerprint: what it runs, without how it is written. Two files that
 * differ only in comments, whitespace, line endings or a BOM have the same fingerprint, so
 * an applied unit edited that way has not drifted. Pure: from parse trees and options.
 */
import { createHash } from 'node:crypto';
import type { UnitOptions } from './types.js';

/** Keys of libpg-query's trees that say where a node is written, not what it is. */
const locationKeys = new Set(['location', 'stmt_location', 'stmt_len']);

/** sha256 of a statement's parse tree with its locations stripped. */
export function statementFingerprint(tree: unknown): string {
  return sha256(JSON.stringify(tree, (key, value: unknown) => (locationKeys.has(key) ? undefined : value)));
}

export interface FingerprintParts {
  options: UnitOptions;
  /** The body's statements, in order. */
  statements: { fingerprint: string }[];
  /** Each check's section and name (they are what `verify` reports), and its statement. */
  checks: { section: string; name: string; fingerprint: string }[];
}

/** sha256 of the unit's options (directives) and its statements' fingerprints, in order. */
export function unitFingerprint(parts: FingerprintParts): string {
  const hash = new UnitFingerprint(parts.options);
  for (const statement of parts.statements) hash.statement(statement.fingerprint);
  return hash.digest(parts.checks);
}

/**
 * `unitFingerprint` taken as the statements go by (a unit too large to hold them): the same
 * JSON text is hashed, written a statement at a time.
 */
export class UnitFingerprint {
  private readonly hash = createHash('sha256');
  private first = true;

  constructor(options: UnitOptions) {
    const head = JSON.stringify({ options: normalizedOptions(options) });
    this.hash.update(`${head.slice(0, -1)},"statements":[`);
  }

  /** The body's next statement. */
  statement(fingerprint: string): void {
    this.hash.update(this.first ? JSON.stringify(fingerprint) : `,${JSON.stringify(fingerprint)}`);
    this.first = false;
  }

  /** After the last statement: the fingerprint, with the unit's checks. */
  digest(checks: FingerprintParts['checks']): string {
    this.hash.update(`],"checks":${JSON.stringify(checks.map((c) => [c.section, c.name, c.fingerprint]))}}`);
    return this.hash.digest('hex');
  }
}

function normalizedOptions(options: UnitOptions): Record<string, unknown> {
  const snapshot =
    options.snapshot.kind === 'tables' ? { kind: 'tables', tables: options.snapshot.tables } : { kind: options.snapshot.kind };
  return {
    transaction: options.transaction,
    snapshot,
    lockTimeoutMs: options.lockTimeoutMs ?? null,
    statementTimeoutMs: options.statementTimeoutMs ?? null,
    retries: options.retries,
    batch: options.batch ?? null,
    // Only when set: the fingerprints of units without it stay what the ledger recorded.
    ...(options.triggersOff ? { triggers: 'off' } : {}),
  };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
