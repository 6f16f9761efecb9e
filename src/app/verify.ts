/**
 * verify(): the verify queries of applied units, run again as they were stored in the ledger
 * when each unit was applied (not as the files say now). Read-only: one READ ONLY transaction,
 * one snapshot for every check, and no advisory lock, so it runs beside anything.
 */
import { connect } from '../db/connection.js';
import { Ledger, type LedgerUnit } from '../db/ledger.js';
import { UsageError } from '../errors.js';
import { runCheck } from '../exec/checks.js';
import { loadConfig } from '../plan/config.js';
import type pg from 'pg';
import { withTransaction } from '../db/transaction.js';

export interface VerifyOptions {
  dir: string;
  url: string | undefined;
  /** Only this unit. */
  unit?: string | undefined;
}

export interface VerifiedCheck {
  unit: string;
  name: string;
  ok: boolean;
  /** Rows returned (0 when the query itself failed). */
  violations: number;
  /** The first few rows. */
  sample: Record<string, unknown>[];
  durationMs: number;
  /** The query failed to run (a table or column it reads is gone...). */
  error?: string;
}

export interface VerifyResult {
  database: string;
  /** Applied units checked, in plan order, with their checks (none for a unit that stored none). */
  units: { id: string; checks: VerifiedCheck[] }[];
  checks: VerifiedCheck[];
  ok: boolean;
}

export async function verify(options: VerifyOptions): Promise<VerifyResult> {
  // Only the ledger's schema is needed from the plan directory: the queries come from the ledger.
  const config = await loadConfig(options.dir);
  const session = await connect(options.url, 'verify');
  try {
    const ledger = new Ledger(session.db, config.ledgerSchema);
    // One snapshot for the ledger and every check: they all see the same moment.
    return await withTransaction(session.client, { isolation: 'repeatable read', readOnly: true, rollback: true }, async () => {
      const rows = selectUnits((await ledger.read()).units, options.unit);
      const units: VerifyResult['units'] = [];
      for (const row of rows) units.push({ id: row.id, checks: await checksOf(session.client, row) });
      const checks = units.flatMap((u) => u.checks);
      return { database: session.description, units, checks, ok: checks.every((c) => c.ok) };
    });
  } finally {
    await session.close();
  }
}

function selectUnits(rows: LedgerUnit[], only: string | undefined): LedgerUnit[] {
  const applied = rows.filter((r) => r.status === 'applied').sort(byPrefix);
  if (only === undefined) return applied;
  const found = applied.filter((r) => r.id === only);
  if (found.length === 0) {
    const row = rows.find((r) => r.id === only);
    throw new UsageError(`--unit ${only}: ${row ? `the unit is ${row.status}, not applied` : 'the ledger has no such unit'}`, {
      code: 'unit-not-applied',
      hint:
        applied.length > 0
          ? `applied units: ${applied.map((r) => r.id).join(', ')}`
          : 'nothing is applied yet: run `tenantify apply` first',
    });
  }
  return found;
}

function byPrefix(a: LedgerUnit, b: LedgerUnit): number {
  const prefix = (id: string): bigint => BigInt(/^(\d+)/.exec(id)?.[1] ?? '0');
  const [pa, pb] = [prefix(a.id), prefix(b.id)];
  return pa < pb ? -1 : pa > pb ? 1 : a.id.localeCompare(b.id);
}

/** Each check under a savepoint: one query that fails (a column since dropped) does not hide the others' results. */
async function checksOf(client: pg.Client, row: LedgerUnit): Promise<VerifiedCheck[]> {
  const results: VerifiedCheck[] = [];
  for (const check of row.verifyChecks) {
    await client.query('SAVEPOINT tenantify_verify');
    try {
      const r = await runCheck(client, check, 'verify');
      results.push({ unit: row.id, name: r.name, ok: r.ok, violations: r.violations, sample: r.sample, durationMs: r.durationMs });
      await client.query('RELEASE SAVEPOINT tenantify_verify');
    } catch (error) {
      await client.query('ROLLBACK TO SAVEPOINT tenantify_verify');
      const e = error as { message?: string; code?: string };
      results.push({
        unit: row.id,
        name: check.name,
        ok: false,
        violations: 0,
        sample: [],
        durationMs: 0,
        error: `${e.message ?? String(error)}${e.code ? ` (SQLSTATE ${e.code})` : ''}`,
      });
    }
  }
  return results;
}
