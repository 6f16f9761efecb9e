/**
 * Every way into a tenant's rows besides the tables themselves: views, materialized views,
 * SECURITY DEFINER functions, the roles that own and may use them, and the defaults the
 * tenant setting has (check-access.ts reads them in the check's snapshot). Pure: the walk
 * that follows views over views to the tables they read, and who reads them there.
 */
import type { TableName } from './types.js';

export interface AccessRole {
  name: string;
  superuser: boolean;
  bypassRls: boolean;
}

/** A view or a materialized view of the schemas read. */
export interface AccessRelation {
  name: TableName;
  kind: 'view' | 'matview';
  owner: string;
  /** `WITH (security_invoker = true)`: the tables under it are read as whoever reads the view. */
  securityInvoker: boolean;
  /** The relations its query reads (tables, views, materialized views), from pg_depend. */
  reads: TableName[];
  /** Roles (not `pg_*`) that may SELECT from it, PUBLIC's grant included. */
  readers: string[];
}

export interface AccessFunction {
  /** `public.search_tasks(text)`. */
  name: string;
  owner: string;
  language: string;
  /** prosrc: the body as written (PL/pgSQL, or SQL in a string). */
  source: string;
  /** pg_get_functiondef(): the whole CREATE FUNCTION (what the PL/pgSQL parser reads). */
  definition: string;
  /** The tables a SQL-standard body (`BEGIN ATOMIC`, `RETURN`) reads, from pg_depend. */
  dependsOn: TableName[];
  /** `SET search_path` of the function, else null (the caller's: `public` is assumed). */
  searchPath: string[] | null;
  /** Roles (not `pg_*`) that may EXECUTE it, PUBLIC's default grant included. */
  executors: string[];
}

/** One default of a custom setting: `ALTER ROLE r SET`, `ALTER DATABASE d SET`, or both (`ALTER ROLE r IN DATABASE d SET`). */
export interface SettingDefault {
  role: string | null;
  database: string | null;
  value: string;
}

export interface Access {
  roles: AccessRole[];
  relations: AccessRelation[];
  functions: AccessFunction[];
  /** Defaults of the model's setting that apply to this database. */
  settingDefaults: SettingDefault[];
}

export const noAccess: Access = { roles: [], relations: [], functions: [], settingDefaults: [] };

/** What a table's row level security looks like to the walk: who owns it, enabled, forced. */
export interface GuardedTable {
  name: TableName;
  owner: string;
  rls: { enabled: boolean; forced: boolean };
}

/** Why `role` reads `table` past its row level security, or null when the policies apply to it. */
export function bypassReason(access: Access, role: string, table: GuardedTable): string | null {
  const facts = access.roles.find((r) => r.name === role);
  if (!table.rls.enabled) return `row level security is off on ${table.name}`;
  if (facts?.superuser) return `${role} is a superuser`;
  if (facts?.bypassRls) return `${role} has BYPASSRLS`;
  if (table.owner === role && !table.rls.forced) return `${role} owns ${table.name} and row level security is not forced`;
  return null;
}

/** A tenant table reached from a relation, as which role, through which relations. */
export interface TenantRead {
  table: TableName;
  /** The role whose rights read the table: the owner of the last view that does not run as the invoker. */
  as: string | null;
  /** The relations from the one read to the table, both ends included. */
  through: TableName[];
  /** A materialized view on the way: its rows are a copy, row level security never applies to them. */
  materialized?: TableName;
}

/**
 * Every tenant table a relation reads, following views over views and materialized views,
 * each with the role it is read as. `reader` reads the relation itself (null: unknown, the
 * app role); a view that is not `security_invoker` reads what is under it as its owner.
 */
export function tenantReads(
  access: Access,
  start: TableName,
  reader: string | null,
  isTenantTable: (name: TableName) => boolean,
): TenantRead[] {
  const byName = new Map(access.relations.map((r) => [r.name, r]));
  const found: TenantRead[] = [];
  const walk = (name: TableName, as: string | null, through: TableName[], materialized: TableName | undefined): void => {
    const relation = byName.get(name);
    if (!relation) {
      if (isTenantTable(name)) found.push({ table: name, as, through, ...(materialized ? { materialized } : {}) });
      return;
    }
    const under = relation.kind === 'view' && relation.securityInvoker ? as : relation.owner;
    const copy = materialized ?? (relation.kind === 'matview' ? relation.name : undefined);
    for (const next of relation.reads) {
      if (through.includes(next)) continue;
      walk(next, under, [...through, next], copy);
    }
  };
  walk(start, reader, [start], undefined);
  return found;
}

/** The roles the rules speak for: `--as ROLE`, else every role that neither bypasses row level security nor owns `owner`'s objects. */
export function appReaders(access: Access, granted: string[], owner: string, appRole: string | undefined): string[] {
  if (appRole) return granted.includes(appRole) ? [appRole] : [];
  return granted.filter((name) => {
    if (name === owner) return false;
    const facts = access.roles.find((r) => r.name === name);
    return !facts?.superuser && !facts?.bypassRls;
  });
}
