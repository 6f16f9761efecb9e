/** What the ledger says of the units: one query for the tests that check it. */
import type { Selectable } from 'kysely';
import type { UnitsTable } from '../../src/db/ledger.js';
import { query } from './db.js';

type UnitState = Pick<Selectable<UnitsTable>, 'id' | 'status'>;

/** Each unit's row in the ledger (`tenantify` schema), by id; none when there is no ledger yet. */
export async function ledgerUnits(url: string, schema = 'tenantify'): Promise<UnitState[]> {
  const [present] = await query<{ ok: boolean }>(url, 'SELECT to_regclass($1) IS NOT NULL AS ok', [`"${schema}".units`]);
  if (!present?.ok) return [];
  return query<UnitState>(url, `SELECT id, status FROM "${schema}".units ORDER BY id`);
}

/** The same as `id → status`. */
export async function ledgerStatuses(url: string, schema = 'tenantify'): Promise<Record<string, string>> {
  return Object.fromEntries((await ledgerUnits(url, schema)).map((r) => [r.id, r.status]));
}
