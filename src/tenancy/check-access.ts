/**
 * Reads the ways into tenant rows besides the tables (access.ts) from the catalog, in the
 * caller's transaction (the check's read-only snapshot): a fixed handful of queries.
 */
import type pg from 'pg';
import type { Access, AccessFunction, AccessRelation, SettingDefault } from './access.js';

export async function readAccess(client: pg.ClientBase, schemas: string[], setting: string): Promise<Access> {
  const roles = await client.query<{ name: string; superuser: boolean; bypass: boolean }>(
    'SELECT rolname AS name, rolsuper AS superuser, rolbypassrls AS bypass FROM pg_roles ORDER BY rolname',
  );
  // What a view reads: the relations its rewrite rule depends on (views over views are followed by access.ts).
  const relations = await client.query<{ name: string; kind: string; owner: string; invoker: boolean; reads: string[]; readers: string[] }>(
    `SELECT format('%s.%s', n.nspname, c.relname) AS name, c.relkind::text AS kind, pg_get_userbyid(c.relowner) AS owner,
            coalesce((SELECT o.option_value::bool FROM pg_options_to_table(c.reloptions) o WHERE o.option_name = 'security_invoker'), false) AS invoker,
            array(SELECT DISTINCT format('%s.%s', rn.nspname, rc.relname)
                    FROM pg_rewrite w
                    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid AND d.refclassid = 'pg_class'::regclass
                    JOIN pg_class rc ON rc.oid = d.refobjid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
                   WHERE w.ev_class = c.oid AND d.refobjid <> c.oid AND rc.relkind IN ('r', 'p', 'v', 'm', 'f')
                   ORDER BY 1)::text[] AS reads,
            array(SELECT r.rolname FROM pg_roles r WHERE r.rolname !~ '^pg_' AND has_table_privilege(r.oid, c.oid, 'SELECT') ORDER BY 1)::text[] AS readers
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY($1)
      ORDER BY 1`,
    [schemas],
  );
  const functions = await client.query<{
    name: string;
    owner: string;
    language: string;
    source: string;
    definition: string;
    depends: string[];
    config: string[] | null;
    executors: string[];
  }>(
    `SELECT format('%s.%s(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS name, pg_get_userbyid(p.proowner) AS owner,
            l.lanname AS language, p.prosrc AS source, pg_get_functiondef(p.oid) AS definition, p.proconfig AS config,
            array(SELECT DISTINCT format('%s.%s', rn.nspname, rc.relname)
                    FROM pg_depend d JOIN pg_class rc ON rc.oid = d.refobjid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
                   WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.refclassid = 'pg_class'::regclass
                   ORDER BY 1)::text[] AS depends,
            array(SELECT r.rolname FROM pg_roles r WHERE r.rolname !~ '^pg_' AND has_function_privilege(r.oid, p.oid, 'EXECUTE') ORDER BY 1)::text[] AS executors
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
      WHERE p.prosecdef AND p.prokind IN ('f', 'p') AND n.nspname = ANY($1)
      ORDER BY 1`,
    [schemas],
  );
  // Defaults that apply to a connection to this database: the database's, every role's, and a role's in this database.
  const defaults = await client.query<{ role: string | null; database: string | null; config: string[] }>(
    `SELECT r.rolname AS role, d.datname AS database, s.setconfig AS config
       FROM pg_db_role_setting s
       LEFT JOIN pg_roles r ON r.oid = s.setrole
       LEFT JOIN pg_database d ON d.oid = s.setdatabase
      WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))`,
  );
  const settingDefaults: SettingDefault[] = [];
  for (const row of defaults.rows) {
    for (const entry of row.config ?? []) {
      const at = entry.indexOf('=');
      if (at > 0 && entry.slice(0, at).toLowerCase() === setting.toLowerCase())
        settingDefaults.push({ role: row.role, database: row.database, value: entry.slice(at + 1) });
    }
  }
  return {
    roles: roles.rows.map((r) => ({ name: r.name, superuser: r.superuser, bypassRls: r.bypass })),
    relations: relations.rows.map((r): AccessRelation => ({
      name: r.name,
      kind: r.kind === 'm' ? 'matview' : 'view',
      owner: r.owner,
      securityInvoker: r.invoker,
      reads: r.reads,
      readers: r.readers,
    })),
    functions: functions.rows.map((f): AccessFunction => ({
      name: f.name,
      owner: f.owner,
      language: f.language,
      source: f.source,
      definition: f.definition,
      dependsOn: f.depends,
      searchPath: searchPathOf(f.config),
      executors: f.executors,
    })),
    settingDefaults,
  };
}

/** `SET search_path = a, "b"` of a function (proconfig), as schema names. */
function searchPathOf(config: string[] | null): string[] | null {
  const entry = (config ?? []).find((c) => c.toLowerCase().startsWith('search_path='));
  if (!entry) return null;
  return entry
    .slice('search_path='.length)
    .split(',')
    .map((s) => s.trim().replace(/^"(.*)"$/, '$1'))
    .filter((s) => s && s !== '$user');
}
