/**
 * The live probe (`--as ROLE`): isolation as the application sees it. Per table, in a
 * transaction that is ALWAYS rolled back, as ROLE (`SET LOCAL ROLE`):
 * - the setting never set in this session: any visible row is a read leak;
 * - the setting at tenant A (`set_config(setting, A, true)`): a visible row of another
 *   tenant is a read leak; an UPDATE giving one of A's rows tenant B's key, or an INSERT
 *   of a copy of one of A's rows with B's key, that goes through is a write leak (an
 *   error is the database refusing it: a pass);
 * - the setting empty (`''`, what a pooled connection holds after a reset): as unset.
 * Every step runs under a savepoint, so one refusal does not hide the next step.
 * Nothing is ever committed: the transaction ends in ROLLBACK whatever happens.
 */
import { connect, type Session } from '../db/connection.js';
import { UsageError } from '../errors.js';
import type { CheckScope, ScopedTable } from './check-scope.js';
import { rowIdentity, sampleSize } from './rules/sample-sql.js';
import type { RuleFinding } from './rules/types.js';
import { quoteIdent, quoteLiteral, quoteQualified } from './sql-text.js';

export interface ProbeFinding extends RuleFinding {
  rule: 'probe-read-leak' | 'probe-write-leak';
}

interface RoleFacts {
  bypassRls: boolean;
  superuser: boolean;
}

export async function probeIsolation(url: string | undefined, scope: CheckScope, role: string, statementTimeoutMs: number): Promise<ProbeFinding[]> {
  // A fresh session: the setting has never been set in it, so "unset" means unset
  // (once set_config() ran, even rolled back, current_setting(s, true) is '' and not NULL).
  const session = await connect(url, 'tenancy check probe');
  try {
    const facts = await roleFacts(session, role);
    const findings: ProbeFinding[] = [];
    const tables = scope.tables.filter((t) => t.hasKey);
    for (const table of tables) findings.push(...(await probeUnset(session, scope, table, role, facts, statementTimeoutMs)));
    for (const table of tables) findings.push(...(await probeTenant(session, scope, table, role, facts, statementTimeoutMs)));
    return findings;
  } finally {
    await session.close();
  }
}

async function roleFacts(session: Session, role: string): Promise<RoleFacts> {
  const rows = (await session.client.query<{ bypass: boolean; superuser: boolean }>('SELECT rolbypassrls AS bypass, rolsuper AS superuser FROM pg_roles WHERE rolname = $1', [role])).rows;
  const row = rows[0];
  if (!row) throw new UsageError(`--as ${role}: no such role`, { hint: 'name the role the application connects as' });
  return { bypassRls: row.bypass, superuser: row.superuser };
}

/** Why ROLE may see past the policies of this table, for the finding's detail. */
async function bypassNote(session: Session, table: ScopedTable, role: string, facts: RoleFacts): Promise<string> {
  const notes: string[] = [];
  if (facts.superuser) notes.push(`${role} is a superuser`);
  else if (facts.bypassRls) notes.push(`${role} has BYPASSRLS`);
  const owns = (await session.client.query<{ owns: boolean }>("SELECT pg_has_role($1, c.relowner, 'USAGE') AS owns FROM pg_class c WHERE c.oid = $2::regclass", [role, quoteQualified(table.name)])).rows[0]?.owns;
  if (owns) notes.push(`${role} owns the table${table.catalog.rls.forced ? '' : ' and row level security is not forced'}`);
  if (!table.catalog.rls.enabled) notes.push('row level security is disabled');
  return notes.length ? ` (${notes.join('; ')})` : '';
}

/** BEGIN; SET LOCAL ROLE; fn; ROLLBACK, always. */
async function asRole<T>(session: Session, role: string, statementTimeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const c = session.client;
  await c.query('BEGIN');
  try {
    await c.query(`SET LOCAL statement_timeout = ${Math.max(0, Math.round(statementTimeoutMs))}`);
    try {
      await c.query(`SET LOCAL ROLE ${quoteIdent(role)}`);
    } catch (error) {
      throw new UsageError(`--as ${role}: cannot switch to that role: ${(error as Error).message}`, { hint: 'connect as a member of that role (or a superuser) to probe as it' });
    }
    return await fn();
  } finally {
    await c.query('ROLLBACK').catch(() => {});
  }
}

/** Runs one step under a savepoint: its result, or undefined when the database refused it (`refused` gets the error). */
async function step<T>(session: Session, fn: () => Promise<T>, refused?: (error: { code?: string; message?: string }) => void): Promise<T | undefined> {
  const c = session.client;
  await c.query('SAVEPOINT tenantify_probe');
  try {
    const result = await fn();
    await c.query('RELEASE SAVEPOINT tenantify_probe');
    return result;
  } catch (error) {
    await c.query('ROLLBACK TO SAVEPOINT tenantify_probe');
    refused?.(error as { code?: string; message?: string });
    return undefined;
  }
}

async function visible(session: Session, table: ScopedTable, where: string, params: unknown[]): Promise<{ rows: number; sample: Record<string, unknown>[] }> {
  const id = rowIdentity(table, 't');
  const from = `FROM ${quoteQualified(table.name)} t${where ? ` WHERE ${where}` : ''}`;
  const count = Number((await session.client.query<{ rows: number }>(`SELECT count(*) AS rows ${from}`, params)).rows[0]?.rows ?? 0);
  if (count === 0) return { rows: 0, sample: [] };
  const key = `t.${quoteIdent(table.key)}`;
  const shown = [...new Set([...id.columns, key])].join(', ');
  const sample = (await session.client.query(`SELECT ${shown} ${from} ORDER BY ${id.columns.join(', ')} LIMIT ${sampleSize}`, params)).rows;
  return { rows: count, sample };
}

async function probeUnset(session: Session, scope: CheckScope, table: ScopedTable, role: string, facts: RoleFacts, timeout: number): Promise<ProbeFinding[]> {
  const seen = await asRole(session, role, timeout, () => step(session, () => visible(session, table, '', [])));
  if (!seen?.rows) return [];
  const note = await bypassNote(session, table, role, facts);
  return [{ rule: 'probe-read-leak', table: table.name, detail: `as ${role} with ${scope.analysis.setting} unset: ${seen.rows} row(s) visible${note}`, rows: seen.rows, sample: seen.sample }];
}

async function probeTenant(session: Session, scope: CheckScope, table: ScopedTable, role: string, facts: RoleFacts, timeout: number): Promise<ProbeFinding[]> {
  const tenants = await pickTenants(session, scope, table);
  const setting = scope.analysis.setting;
  const key = `t.${quoteIdent(table.key)}`;
  const found: ProbeFinding[] = [];
  const findings = await asRole(session, role, timeout, async () => {
    if (tenants) {
      const { a, b } = tenants;
      await session.client.query('SELECT set_config($1, $2, true)', [setting, a]);
      const other = await step(session, () => visible(session, table, `${key}::text IS DISTINCT FROM $1`, [a]));
      if (other?.rows) found.push({ rule: 'probe-read-leak', table: table.name, detail: `as ${role} with ${setting} = ${a}: ${other.rows} row(s) of other tenants visible`, rows: other.rows, sample: other.sample });
      if (b !== null && !table.keyIsPrimaryKey) found.push(...(await probeWrites(session, table, role, setting, a, b)));
    }
    await session.client.query('SELECT set_config($1, $2, true)', [setting, '']);
    const empty = await step(session, () => visible(session, table, '', []));
    if (empty?.rows) found.push({ rule: 'probe-read-leak', table: table.name, detail: `as ${role} with ${setting} = '': ${empty.rows} row(s) visible`, rows: empty.rows, sample: empty.sample });
    return found;
  });
  if (findings.length === 0) return [];
  const note = await bypassNote(session, table, role, facts);
  return findings.map((f) => ({ ...f, detail: `${f.detail}${note}` }));
}

/**
 * Tenant A: one whose rows the table holds; B: another (of the table, else of the tenants
 * table). Read as the connecting user, through the key's index (the first and last key);
 * null when the table is empty, or when that user cannot read it (row level security
 * forced on its owner: connect as a role with BYPASSRLS to probe it).
 */
async function pickTenants(session: Session, scope: CheckScope, table: ScopedTable): Promise<{ a: string; b: string | null } | null> {
  const key = quoteIdent(table.key);
  const end = async (order: 'ASC' | 'DESC'): Promise<string | undefined> =>
    (await session.client.query<{ k: string }>(`SELECT ${key}::text AS k FROM ${quoteQualified(table.name)} WHERE ${key} IS NOT NULL ORDER BY ${key} ${order} LIMIT 1`)).rows[0]?.k;
  try {
    const a = await end('ASC');
    if (a === undefined) return null;
    const last = await end('DESC');
    if (last !== undefined && last !== a) return { a, b: last };
    const tenants = scope.tenants;
    if (!tenants) return { a, b: null };
    const column = quoteIdent(tenants.column);
    const other = (await session.client.query<{ b: string }>(`SELECT ${column}::text AS b FROM ${quoteQualified(tenants.table.name)} WHERE ${column}::text <> $1 LIMIT 1`, [a])).rows[0];
    return { a, b: other?.b ?? null };
  } catch {
    return null;
  }
}

async function probeWrites(session: Session, table: ScopedTable, role: string, setting: string, a: string, b: string): Promise<ProbeFinding[]> {
  const c = session.client;
  const found: ProbeFinding[] = [];
  const name = quoteQualified(table.name);
  const key = quoteIdent(table.key);
  const as = (tenant: string) => c.query('SELECT set_config($1, $2, true)', [setting, tenant]);
  // B's rows as B sees them: a write into B shows up there (RETURNING cannot tell: a row B
  // holds is not visible to A's SELECT policies, and a trigger may put the key back).
  const rowsOfB = async (where = '', params: unknown[] = []): Promise<number> => {
    await as(b);
    const n = Number((await c.query<{ n: number }>(`SELECT count(*) AS n FROM ${name} t WHERE t.${key}::text = $1${where}`, [b, ...params])).rows[0]?.n ?? 0);
    await as(a);
    return n;
  };
  const pk = table.catalog.primaryKey ?? [];

  // UPDATE one of A's rows (found by its primary key) to B's key.
  if (pk.length > 0) {
    const target = (await step(session, () => c.query<Record<string, unknown>>(`SELECT ${pk.map((k) => `t.${quoteIdent(k)}`).join(', ')} FROM ${name} t WHERE t.${key}::text = $1 LIMIT 1`, [a])))?.rows[0];
    if (target) {
      const values = pk.map((k) => target[k]);
      const match = pk.map((k, i) => `t.${quoteIdent(k)} = $${i + 2}`).join(' AND ');
      const updated = await step(session, async () => {
        const r = await c.query(`UPDATE ${name} t SET ${key} = $1 WHERE ${match}`, [b, ...values]);
        const moved = r.rowCount === 1 ? await rowsOfB(` AND ${pk.map((k, i) => `t.${quoteIdent(k)} = $${i + 2}`).join(' AND ')}`, values) : 0;
        return moved;
      });
      if (updated) {
        found.push({ rule: 'probe-write-leak', table: table.name, detail: `as ${role} with ${setting} = ${a}: an UPDATE gave a row of tenant ${a} the key ${b}`, rows: updated, sample: [target] });
      }
    }
  }

  // INSERT a copy of one of A's rows with B's key; defaulted key columns (serial, identity) are left to their defaults.
  const columns = await insertableColumns(session, table);
  if (!columns.includes(table.key)) return found;
  const list = columns.map(quoteIdent).join(', ');
  const keyType = table.catalog.columns.find((col) => col.name === table.key)?.type ?? 'text';
  const values = columns.map((col) => (col === table.key ? `$2::text::${keyType}` : `s.${quoteIdent(col)}`)).join(', ');
  const inserted = await step(session, async () => {
    const before = await rowsOfB();
    const r = await c.query(`INSERT INTO ${name} (${list}) SELECT ${values} FROM ${name} s WHERE s.${key}::text = $1 LIMIT 1`, [a, b]);
    return r.rowCount === 1 ? (await rowsOfB()) - before : 0;
  });
  if (inserted) {
    found.push({ rule: 'probe-write-leak', table: table.name, detail: `as ${role} with ${setting} = ${a}: an INSERT with the key ${b} went through`, rows: inserted, sample: [] });
  }
  return found;
}

/** Columns a copied row can carry: not generated, not GENERATED ALWAYS, not a defaulted column of a unique key. */
async function insertableColumns(session: Session, table: ScopedTable): Promise<string[]> {
  const rows = (
    await session.client.query<{ name: string }>(
      `SELECT a.attname AS name
         FROM pg_attribute a
        WHERE a.attrelid = ${quoteLiteral(quoteQualified(table.name))}::regclass AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attgenerated = '' AND a.attidentity <> 'a'
          AND NOT (a.atthasdef AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisunique AND a.attnum = ANY (i.indkey)))
        ORDER BY a.attnum`,
    )
  ).rows;
  return rows.map((r) => r.name);
}
