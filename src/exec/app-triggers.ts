/**
 * `-- tenantify:triggers off`: a unit whose writes must change nothing but what it sets (a
 * backfilled key) runs with session_replication_role = replica, so the application's
 * triggers do not fire for them while the app's own sessions still fire them. Setting it
 * takes a superuser or, on PostgreSQL 15+, `GRANT SET ON PARAMETER`. Before anything runs,
 * the triggers that would fire all the same are named (exit 2): every enabled trigger of
 * the tables such units write when the role may not set it, and the ENABLE ALWAYS ones
 * (which fire in replica mode too) when it may. The plan's own triggers (the key triggers
 * it creates) are left out: they fire by design.
 */
import type { Session } from '../db/connection.js';
import { UsageError } from '../errors.js';
import type { Script, Unit } from '../plan/types.js';

/** A script to run and the tables it writes (a rollback's DO block hides its table: its unit's are added). */
export interface TriggersOffScript {
  id: string;
  script: Script;
  tables: string[];
}

/** The scripts of `units` (or of their rollbacks) that ask for `triggers off`, with the tables they write. */
export function triggersOffScripts(units: Unit[], direction: 'apply' | 'rollback'): TriggersOffScript[] {
  const found: TriggersOffScript[] = [];
  for (const unit of units) {
    const script = direction === 'apply' ? unit : unit.rollback;
    if (!script?.options.triggersOff) continue;
    const tables = [
      ...script.writes,
      ...(direction === 'rollback' ? unit.writes : []),
      ...[script.options.batch?.table, unit.options.batch?.table].filter((t): t is string => t !== undefined),
    ];
    found.push({ id: unit.id, script, tables: [...new Set(tables)] });
  }
  return found;
}

/** Names of the triggers the plan's units create (CREATE TRIGGER in any unit). */
export function planTriggers(units: Unit[]): Set<string> {
  const names = new Set<string>();
  const create = /^CREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\s+("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)/i;
  for (const unit of units) {
    for (const statement of unit.statements) {
      const match = create.exec(statement.sql);
      const name = match?.[1];
      if (name) names.add(name.startsWith('"') ? name.slice(1, -1).replace(/""/g, '"') : name.toLowerCase());
    }
  }
  return names;
}

interface FiringTrigger {
  table: string;
  trigger: string;
  always: boolean;
}

/**
 * Refuses the run (exit 2, nothing done) when a trigger would fire for a `triggers off` unit's
 * writes. `own`: the plan's triggers (planTriggers), asked only when a unit has triggers off
 * (it walks every statement of the plan).
 */
export async function ensureTriggersStayOff(session: Session, scripts: TriggersOffScript[], own: () => Set<string>): Promise<void> {
  if (scripts.length === 0) return;
  const { client } = session;
  const [role] = (
    await client.query<{ name: string; super: boolean }>(
      'SELECT current_user AS name, rolsuper AS super FROM pg_roles WHERE rolname = current_user',
    )
  ).rows;
  let maySet = role?.super ?? false;
  if (!maySet && session.serverVersion >= 150000) {
    maySet =
      (await client.query<{ ok: boolean }>("SELECT has_parameter_privilege('session_replication_role', 'SET') AS ok")).rows[0]?.ok ?? false;
  }
  const firing = new Map<string, { trigger: FiringTrigger; units: string[] }>();
  for (const { id, tables } of scripts) {
    if (tables.length === 0) continue;
    const rows = (
      await client.query<FiringTrigger>(
        `SELECT format('%I.%I', n.nspname, c.relname) AS table, t.tgname AS trigger, t.tgenabled = 'A' AS always
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE t.tgrelid IN (SELECT to_regclass(w) FROM unnest($1::text[]) AS w)
            AND NOT t.tgisinternal AND t.tgenabled <> 'D' AND ($2 = false OR t.tgenabled = 'A')
            AND NOT (t.tgname = ANY ($3::text[]))
          ORDER BY 1, 2`,
        [tables, maySet, [...own()]],
      )
    ).rows;
    for (const trigger of rows) {
      const key = `${trigger.table} ${trigger.trigger}`;
      const entry = firing.get(key) ?? { trigger, units: [] };
      entry.units.push(id);
      firing.set(key, entry);
    }
  }
  if (firing.size === 0) return;
  const entries = [...firing.values()];
  const always = entries.filter((e) => e.trigger.always);
  throw new UsageError(
    `${entries.length} application trigger${entries.length === 1 ? '' : 's'} would fire for the upgrade's own writes (units with \`-- tenantify:triggers off\`)${maySet ? '' : `: ${role?.name ?? 'this role'} may not set session_replication_role, which keeps them from firing`}; nothing was run`,
    {
      code: 'app-triggers-would-fire',
      details: entries.map(
        (e) =>
          `${e.trigger.table}: trigger ${e.trigger.trigger}${e.trigger.always ? ' (ENABLE ALWAYS: fires in replica mode too)' : ''}, for ${e.units.join(', ')}`,
      ),
      hint: [
        ...(maySet
          ? []
          : [
              `let the role keep them from firing: as a superuser, GRANT SET ON PARAMETER session_replication_role TO ${role?.name ?? '<role>'} (PostgreSQL 15+), or run the upgrade as a superuser`,
            ]),
        ...(always.length > 0
          ? ['make an ENABLE ALWAYS trigger an ordinary one (ALTER TABLE ... ENABLE TRIGGER ...) for the upgrade']
          : []),
        'or accept that they fire: remove `-- tenantify:triggers off` from these units',
      ].join('; '),
    },
  );
}
