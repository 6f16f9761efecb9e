/** Small builders of units and ledger rows for the pure planner's tests. */
import type { LedgerUnit } from '../../src/db/ledger.js';
import type { Statement, Unit, UnitOptions } from '../../src/plan/types.js';

export function statement(sql: string, line = 1): Statement {
  return { sql, line, column: 1, hash: `hash:${sql}` };
}

export function unit(id: string, overrides: Partial<Omit<Unit, 'options'>> & { options?: Partial<UnitOptions> } = {}): Unit {
  const prefix = BigInt(id.split('_')[0] ?? '0');
  const { options, ...rest } = overrides;
  return {
    id,
    prefix,
    name: id.replace(/^\d+_/, ''),
    kind: 'migration',
    file: `migrations/${id}.sql`,
    absolutePath: `/plan/migrations/${id}.sql`,
    format: 'sql',
    checksum: `sum:${id}`,
    options: {
      transaction: true,
      snapshot: { kind: 'default' },
      lockTimeoutMs: undefined,
      statementTimeoutMs: undefined,
      retries: 3,
      batch: undefined,
      ...options,
    },
    statements: [statement(`CREATE TABLE t${prefix} ()`)],
    prechecks: [],
    verifies: [],
    writes: [],
    definition: undefined,
    rollback: undefined,
    ...rest,
  };
}

export function row(id: string, overrides: Partial<LedgerUnit> = {}): LedgerUnit {
  return {
    id,
    kind: 'migration',
    file: `migrations/${id}.sql`,
    status: 'applied',
    checksum: `sum:${id}`,
    runId: 1,
    startedAt: new Date(0),
    appliedAt: new Date(0),
    durationMs: 1,
    progress: {},
    verifyChecks: [],
    verifyResults: null,
    snapshot: null,
    error: null,
    updatedAt: new Date(0),
    ...overrides,
  };
}
