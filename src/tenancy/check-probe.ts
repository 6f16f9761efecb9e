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
 *
 * Then every view and materialized view ROLE may read that reads a tenant table, read
 * whole with the setting unset, empty, at tenant A and at tenant B: rows while unset, or
 * the same rows at A as at B, are a leak (the view does not narrow with the setting).
 * And the policies' cost (`rls-policy-cost`): EXPLAIN of a read as ROLE at tenant A with
 * sequential scans disabled still scans a large table whole when no index serves the
 * policy; a VOLATILE function in a policy runs once per row.
 */
import { connect, type Session } from '../db/connection.js';
import { withTransaction } from '../db/transaction.js';
import { UsageError } from '../errors.js';
import { tenantReads } from './access.js';
import type { CheckScope, ScopedTable } from './check-scope.js';
import { shortName } from './check-scope.js';
import { rowIdentity, sampleSize } from './rules/sample-sql.js';
import type { RuleFinding } from './rules/types.js';
import { quoteIdent, quoteLiteral, quoteQualified } from './sql-text.js';

export interface ProbeFinding extends RuleFinding {
  rule: 'probe-read-leak' | 'probe-write-leak' | 'rls-policy-cost';
}

export interface ProbeOptions {
  /** `lint.largeTableRows`: a table past it that the policy makes scan whole is a finding. */
  largeTableRows: number;
  /** The probe rules selected (default: all). */
  rules?: string[];
}

interface RoleFacts {
  bypassRls: boolean;
  superuser: boolean;
}

export async function probeIsolation(
  url: string | undefined,
  scope: CheckScope,
  role: string,
  statementTimeoutMs: number,
  options: ProbeOptions = { largeTableRows: 100_000 },
): Promise<ProbeFinding[]> {
  // A fresh session: the setting has never been set in it, so "unset" means unset
  // (once set_config() ran, even rolled back, current_setting(s, true) is '' and not NULL).
  const facts = roleFacts(scope, role);
  const session = await connect(url, 'tenancy check probe');
  const wanted = (rule: ProbeFinding['rule']): boolean => !options.rules || options.rules.includes(rule);
  // Tenants A and B of each table, read once for the reads, the writes and the policies' cost.
  const tenantsOf = memoized((table: ScopedTable) => pickTenants(session, scope, table));
  try {
    const findings: ProbeFinding[] = [];
    const tables = scope.tables.filter((t) => t.hasKey);
    const relations = readableRelations(scope, role);
    if (wanted('probe-read-leak')) {
      for (const table of tables) findings.push(...(await probeUnset(session, scope, table, role, facts, statementTimeoutMs)));
      const unset = new Map<string, Content | undefined>();
      for (const name of relations)
        unset.set(name, await asRole(session, role, statementTimeoutMs, () => step(session, () => content(session, name))));
      findings.push(...(await probeRelations(session, scope, relations, unset, role, statementTimeoutMs)));
    }
    if (wanted('probe-read-leak') || wanted('probe-write-leak')) {
      for (const table of tables)
        findings.push(
          ...(await probeTenant(session, scope, table, tenantsOf, role, facts, statementTimeoutMs, wanted('probe-write-leak'))),
        );
    }
    if (wanted('rls-policy-cost'))
      findings.push(...(await policyCost(session, scope, tables, tenantsOf, role, options.largeTableRows, statementTimeoutMs)));
    return findings;
  } finally {
    await session.close();
  }
}

/** The role as the catalog read in the check's snapshot has it (scope.access.roles). */
function roleFacts(scope: CheckScope, role: string): RoleFacts {
  const row = scope.access.roles.find((r) => r.name === role);
  if (!row)
    throw new UsageError(`--as ${role}: no such role`, { code: 'role-not-found', hint: 'name the role the application connects as' });
  return { bypassRls: row.bypassRls, superuser: row.superuser };
}

/** Why ROLE may see past the policies of this table, for the finding's detail. */
async function bypassNote(session: Session, table: ScopedTable, role: string, facts: RoleFacts): Promise<string> {
  const notes: string[] = [];
  if (facts.superuser) notes.push(`${role} is a superuser`);
  else if (facts.bypassRls) notes.push(`${role} has BYPASSRLS`);
  const owns = (
    await session.client.query<{ owns: boolean }>(
      "SELECT pg_has_role($1, c.relowner, 'USAGE') AS owns FROM pg_class c WHERE c.oid = $2::regclass",
      [role, quoteQualified(table.name)],
    )
  ).rows[0]?.owns;
  if (owns) notes.push(`${role} owns the table${table.catalog.rls.forced ? '' : ' and row level security is not forced'}`);
  if (!table.catalog.rls.enabled) notes.push('row level security is disabled');
  return notes.length ? ` (${notes.join('; ')})` : '';
}

/** BEGIN; SET LOCAL ROLE; fn; ROLLBACK, always. */
function asRole<T>(session: Session, role: string, statementTimeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const c = session.client;
  return withTransaction(c, { rollback: true }, async () => {
    await c.query(`SET LOCAL statement_timeout = ${Math.max(0, Math.round(statementTimeoutMs))}`);
    try {
      await c.query(`SET LOCAL ROLE ${quoteIdent(role)}`);
    } catch (error) {
      throw new UsageError(`--as ${role}: cannot switch to that role: ${(error as Error).message}`, {
        code: 'role-not-usable',
        hint: 'connect as a member of that role (or a superuser) to probe as it',
      });
    }
    return fn();
  });
}

/** Runs one step under a savepoint: its result, or undefined when the database refused it (`refused` gets the error). */
async function step<T>(
  session: Session,
  fn: () => Promise<T>,
  refused?: (error: { code?: string; message?: string }) => void,
): Promise<T | undefined> {
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

async function visible(
  session: Session,
  table: ScopedTable,
  where: string,
  params: unknown[],
): Promise<{ rows: number; sample: Record<string, unknown>[] }> {
  const id = rowIdentity(table, 't');
  const from = `FROM ${quoteQualified(table.name)} t${where ? ` WHERE ${where}` : ''}`;
  const count = Number((await session.client.query<{ rows: number }>(`SELECT count(*) AS rows ${from}`, params)).rows[0]?.rows ?? 0);
  if (count === 0) return { rows: 0, sample: [] };
  const key = `t.${quoteIdent(table.key)}`;
  const shown = [...new Set([...id.columns, key])].join(', ');
  const sample = (await session.client.query(`SELECT ${shown} ${from} ORDER BY ${id.columns.join(', ')} LIMIT ${sampleSize}`, params)).rows;
  return { rows: count, sample };
}

async function probeUnset(
  session: Session,
  scope: CheckScope,
  table: ScopedTable,
  role: string,
  facts: RoleFacts,
  timeout: number,
): Promise<ProbeFinding[]> {
  const seen = await asRole(session, role, timeout, () => step(session, () => visible(session, table, '', [])));
  if (!seen?.rows) return [];
  const note = await bypassNote(session, table, role, facts);
  return [
    {
      rule: 'probe-read-leak',
      table: table.name,
      detail: `as ${role} with ${scope.analysis.setting} unset: ${seen.rows} row(s) visible${note}`,
      rows: seen.rows,
      sample: seen.sample,
    },
  ];
}

async function probeTenant(
  session: Session,
  scope: CheckScope,
  table: ScopedTable,
  tenantsOf: TenantsOf,
  role: string,
  facts: RoleFacts,
  timeout: number,
  writes = true,
): Promise<ProbeFinding[]> {
  const tenants = await tenantsOf(table);
  const setting = scope.analysis.setting;
  const key = `t.${quoteIdent(table.key)}`;
  const found: ProbeFinding[] = [];
  const findings = await asRole(session, role, timeout, async () => {
    if (tenants) {
      const { a, b } = tenants;
      await session.client.query('SELECT set_config($1, $2, true)', [setting, a]);
      const other = await step(session, () => visible(session, table, `${key}::text IS DISTINCT FROM $1`, [a]));
      if (other?.rows)
        found.push({
          rule: 'probe-read-leak',
          table: table.name,
          detail: `as ${role} with ${setting} = ${a}: ${other.rows} row(s) of other tenants visible`,
          rows: other.rows,
          sample: other.sample,
        });
      if (writes && b !== null && !table.keyIsPrimaryKey) found.push(...(await probeWrites(session, table, role, setting, a, b)));
    }
    await session.client.query('SELECT set_config($1, $2, true)', [setting, '']);
    const empty = await step(session, () => visible(session, table, '', []));
    if (empty?.rows)
      found.push({
        rule: 'probe-read-leak',
        table: table.name,
        detail: `as ${role} with ${setting} = '': ${empty.rows} row(s) visible`,
        rows: empty.rows,
        sample: empty.sample,
      });
    return found;
  });
  if (findings.length === 0) return [];
  const note = await bypassNote(session, table, role, facts);
  return findings.map((f) => ({ ...f, detail: `${f.detail}${note}` }));
}

type Tenants = { a: string; b: string | null } | null;
type TenantsOf = (table: ScopedTable) => Promise<Tenants>;

function memoized(fn: TenantsOf): TenantsOf {
  const known = new Map<string, Promise<Tenants>>();
  return (table) => {
    let tenants = known.get(table.name);
    if (!tenants) known.set(table.name, (tenants = fn(table)));
    return tenants;
  };
}

/**
 * Tenant A: one whose rows the table holds; B: another (of the table, else of the tenants
 * table). Read as the connecting user, through the key's index (the first and last key);
 * null when the table is empty, or when that user cannot read it (row level security
 * forced on its owner: connect as a role with BYPASSRLS to probe it).
 */
async function pickTenants(session: Session, scope: CheckScope, table: ScopedTable): Promise<Tenants> {
  const key = quoteIdent(table.key);
  const end = async (order: 'ASC' | 'DESC'): Promise<string | undefined> =>
    (
      await session.client.query<{ k: string }>(
        `SELECT ${key}::text AS k FROM ${quoteQualified(table.name)} WHERE ${key} IS NOT NULL ORDER BY ${key} ${order} LIMIT 1`,
      )
    ).rows[0]?.k;
  try {
    const a = await end('ASC');
    if (a === undefined) return null;
    const last = await end('DESC');
    if (last !== undefined && last !== a) return { a, b: last };
    const tenants = scope.tenants;
    if (!tenants) return { a, b: null };
    const column = quoteIdent(tenants.column);
    const other = (
      await session.client.query<{ b: string }>(
        `SELECT ${column}::text AS b FROM ${quoteQualified(tenants.table.name)} WHERE ${column}::text <> $1 LIMIT 1`,
        [a],
      )
    ).rows[0];
    return { a, b: other?.b ?? null };
  } catch {
    return null;
  }
}

async function probeWrites(
  session: Session,
  table: ScopedTable,
  role: string,
  setting: string,
  a: string,
  b: string,
): Promise<ProbeFinding[]> {
  const c = session.client;
  const found: ProbeFinding[] = [];
  const name = quoteQualified(table.name);
  const key = quoteIdent(table.key);
  const as = (tenant: string) => c.query('SELECT set_config($1, $2, true)', [setting, tenant]);
  // B's rows as B sees them: a write into B shows up there (RETURNING cannot tell: a row B
  // holds is not visible to A's SELECT policies, and a trigger may put the key back).
  const rowsOfB = async (where = '', params: unknown[] = []): Promise<number> => {
    await as(b);
    const n = Number(
      (await c.query<{ n: number }>(`SELECT count(*) AS n FROM ${name} t WHERE t.${key}::text = $1${where}`, [b, ...params])).rows[0]?.n ??
        0,
    );
    await as(a);
    return n;
  };
  const pk = table.catalog.primaryKey ?? [];

  // UPDATE one of A's rows (found by its primary key) to B's key.
  if (pk.length > 0) {
    const target = (
      await step(session, () =>
        c.query<Record<string, unknown>>(
          `SELECT ${pk.map((k) => `t.${quoteIdent(k)}`).join(', ')} FROM ${name} t WHERE t.${key}::text = $1 LIMIT 1`,
          [a],
        ),
      )
    )?.rows[0];
    if (target) {
      const values = pk.map((k) => target[k]);
      const match = pk.map((k, i) => `t.${quoteIdent(k)} = $${i + 2}`).join(' AND ');
      const updated = await step(session, async () => {
        const r = await c.query(`UPDATE ${name} t SET ${key} = $1 WHERE ${match}`, [b, ...values]);
        const moved =
          r.rowCount === 1 ? await rowsOfB(` AND ${pk.map((k, i) => `t.${quoteIdent(k)} = $${i + 2}`).join(' AND ')}`, values) : 0;
        return moved;
      });
      if (updated) {
        found.push({
          rule: 'probe-write-leak',
          table: table.name,
          detail: `as ${role} with ${setting} = ${a}: an UPDATE gave a row of tenant ${a} the key ${b}`,
          rows: updated,
          sample: [target],
        });
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
    found.push({
      rule: 'probe-write-leak',
      table: table.name,
      detail: `as ${role} with ${setting} = ${a}: an INSERT with the key ${b} went through`,
      rows: inserted,
      sample: [],
    });
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

// ---------------------------------------------------------------------------------------
// Views and materialized views
// ---------------------------------------------------------------------------------------

/** The views and materialized views ROLE may read that read a tenant table (through views over views). */
function readableRelations(scope: CheckScope, role: string): string[] {
  return scope.access.relations
    .filter((r) => r.readers.includes(role))
    .filter((r) => tenantReads(scope.access, r.name, role, (n) => scope.tenantTables.has(n)).length > 0)
    .map((r) => r.name);
}

interface Content {
  rows: number;
  /** md5 of every row's text, in order: two readings with the same digest saw the same rows. */
  digest: string | null;
}

async function content(session: Session, relation: string): Promise<Content> {
  const row = (
    await session.client.query<{ rows: string; digest: string | null }>(
      `SELECT count(*) AS rows, md5(string_agg(v::text, E'\\n' ORDER BY v::text)) AS digest FROM ${quoteQualified(relation)} v`,
    )
  ).rows[0];
  return { rows: Number(row?.rows ?? 0), digest: row?.digest ?? null };
}

/** Two tenants of the tenants table (read as the connecting user), or fewer when it has fewer. */
async function twoTenants(session: Session, scope: CheckScope): Promise<string[]> {
  const tenants = scope.tenants;
  if (!tenants) return [];
  const column = quoteIdent(tenants.column);
  try {
    return (
      await session.client.query<{ id: string }>(
        `SELECT ${column}::text AS id FROM ${quoteQualified(tenants.table.name)} ORDER BY ${column} LIMIT 2`,
      )
    ).rows.map((r) => r.id);
  } catch {
    return [];
  }
}

async function probeRelations(
  session: Session,
  scope: CheckScope,
  relations: string[],
  unset: Map<string, Content | undefined>,
  role: string,
  timeout: number,
): Promise<ProbeFinding[]> {
  const setting = scope.analysis.setting;
  const [a, b] = await twoTenants(session, scope);
  const found: ProbeFinding[] = [];
  for (const name of relations) {
    const read = (value: string) =>
      asRole(session, role, timeout, async () => {
        await session.client.query('SELECT set_config($1, $2, true)', [setting, value]);
        return step(session, () => content(session, name));
      });
    const kind = scope.access.relations.find((r) => r.name === name)?.kind === 'matview' ? 'materialized view' : 'view';
    const none = unset.get(name);
    if (none?.rows)
      found.push({
        rule: 'probe-read-leak',
        table: name,
        detail: `as ${role} with ${setting} unset: ${none.rows} row(s) of the ${kind} visible`,
        rows: none.rows,
        sample: [],
      });
    const empty = await read('');
    if (empty?.rows)
      found.push({
        rule: 'probe-read-leak',
        table: name,
        detail: `as ${role} with ${setting} = '': ${empty.rows} row(s) of the ${kind} visible`,
        rows: empty.rows,
        sample: [],
      });
    if (a === undefined || b === undefined) continue;
    const [atA, atB] = [await read(a), await read(b)];
    if (atA?.rows && atB?.rows && atA.digest === atB.digest) {
      found.push({
        rule: 'probe-read-leak',
        table: name,
        detail: `as ${role}, the ${kind} shows the same ${atA.rows} row(s) with ${setting} = ${a} and = ${b}: it does not narrow to the tenant while it reads ${tenantTablesOf(scope, name, role)}`,
        rows: atA.rows,
        sample: [],
      });
    }
  }
  return found;
}

function tenantTablesOf(scope: CheckScope, relation: string, role: string): string {
  return [...new Set(tenantReads(scope.access, relation, role, (n) => scope.tenantTables.has(n)).map((r) => shortName(r.table)))].join(
    ', ',
  );
}

// ---------------------------------------------------------------------------------------
// What the policies cost
// ---------------------------------------------------------------------------------------

interface PlanNode {
  'Node Type'?: string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

function seqScans(node: PlanNode | undefined): string[] {
  if (!node) return [];
  const own = node['Node Type'] === 'Seq Scan' && node['Relation Name'] ? [node['Relation Name']] : [];
  return [...own, ...(node.Plans ?? []).flatMap(seqScans)];
}

async function policyCost(
  session: Session,
  scope: CheckScope,
  tables: ScopedTable[],
  tenantsOf: TenantsOf,
  role: string,
  largeTableRows: number,
  timeout: number,
): Promise<ProbeFinding[]> {
  const found: ProbeFinding[] = [];
  const setting = scope.analysis.setting;
  // Functions a policy calls, from pg_depend (built-in functions are pinned and not recorded there).
  const volatile = (
    await session.client.query<{ schema: string; table: string; policy: string; fn: string }>(
      `SELECT n.nspname AS schema, c.relname AS table, pol.polname AS policy, p.oid::regprocedure::text AS fn
         FROM pg_policy pol
         JOIN pg_class c ON c.oid = pol.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_depend d ON d.classid = 'pg_policy'::regclass AND d.objid = pol.oid AND d.refclassid = 'pg_proc'::regclass
         JOIN pg_proc p ON p.oid = d.refobjid
        WHERE p.provolatile = 'v'
        ORDER BY 1, 2, 3, 4`,
    )
  ).rows;
  for (const table of tables) {
    for (const v of volatile.filter((r) => `${r.schema}.${r.table}` === table.name)) {
      found.push({
        rule: 'rls-policy-cost',
        table: table.name,
        detail: `policy ${v.policy} calls ${v.fn}, a VOLATILE function: evaluated for every row instead of once per query`,
        rows: null,
        sample: [],
      });
    }
    if (table.catalog.estimatedRows <= largeTableRows) continue;
    const tenants = await tenantsOf(table);
    if (!tenants) continue;
    const scanned = await asRole(session, role, timeout, async () => {
      await session.client.query('SELECT set_config($1, $2, true)', [setting, tenants.a]);
      // Sequential scans disabled: a plan that still has one has no index to serve the policy.
      await session.client.query('SET LOCAL enable_seqscan = off');
      return step(session, async () => {
        const plan = (
          await session.client.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(
            `EXPLAIN (FORMAT JSON) SELECT * FROM ${quoteQualified(table.name)} LIMIT 1`,
          )
        ).rows[0]?.['QUERY PLAN'][0]?.Plan;
        return seqScans(plan);
      });
    });
    if (scanned?.length) {
      found.push({
        rule: 'rls-policy-cost',
        table: table.name,
        detail: `as ${role} with ${setting} = ${tenants.a}, a read scans all ${table.catalog.estimatedRows} rows (more than lint.largeTableRows, ${largeTableRows}): no index serves the policy`,
        rows: null,
        sample: [],
      });
    }
  }
  return found;
}
