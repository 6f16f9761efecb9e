/**
 * One transaction for a callback's life (graphile-migrate's `with…` helpers): BEGIN with the
 * options asked, COMMIT when the callback resolves, ROLLBACK when it throws (the callback's
 * error is the one that propagates). `rollback: true` rolls back in both cases: read-only
 * probes, verifies and dry runs leave nothing behind, whatever they did.
 */
import type pg from 'pg';

export interface TransactionOptions {
  isolation?: 'read committed' | 'repeatable read' | 'serializable';
  readOnly?: boolean;
  /** End with ROLLBACK even when the callback succeeds. */
  rollback?: boolean;
}

/** The BEGIN statement for these options. */
export function beginStatement(options: TransactionOptions = {}): string {
  return ['BEGIN', options.isolation ? `ISOLATION LEVEL ${options.isolation.toUpperCase()}` : '', options.readOnly ? 'READ ONLY' : '']
    .filter(Boolean)
    .join(' ');
}

export async function withTransaction<T>(client: pg.ClientBase, options: TransactionOptions, fn: () => Promise<T>): Promise<T> {
  await client.query(beginStatement(options));
  let result: T;
  try {
    result = await fn();
  } catch (error) {
    // The connection may be gone; the error that matters is the callback's.
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
  await client.query(options.rollback ? 'ROLLBACK' : 'COMMIT');
  return result;
}
