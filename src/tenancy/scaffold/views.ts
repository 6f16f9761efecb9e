/**
 * `--rls`: the views over tenant tables made to run as their invoker. A view runs with its
 * owner's rights by default, and an owner that bypasses row level security (a superuser, a
 * BYPASSRLS role, or the tables' owner) hands every reader every tenant's rows, however the
 * tables' policies read. `security_invoker` (PostgreSQL 15) makes the reader's policies apply.
 * A materialized view holds a copy of its rows that no policy filters: the unit names those
 * every tenant can still read whole. Pure text generation.
 */
import { quoteLiteral } from '../sql-text.js';
import { qt, type ScaffoldModel } from './model.js';
import { wrap, type UnitText } from './render.js';

export function viewsInvoker(m: ScaffoldModel, lockSafe: string[], noSnapshot: string): [UnitText, UnitText] | undefined {
  const over = m.analysis.views ?? [];
  const views = over.filter((v) => v.kind === 'view' && v.securityInvoker !== true);
  const materialized = over.filter((v) => v.kind === 'materialized');
  // Materialized views alone change nothing here: analyze lists them and `tenancy check` reports them.
  if (views.length === 0) return undefined;
  const copies =
    materialized.length === 0
      ? []
      : [
          '',
          ...wrap(
            `Every tenant can still read these materialized views whole: row level security does not apply to them. Revoke the app role's SELECT on them, or replace each with a view (or a table with the key and a policy): ${materialized.map((v) => `${v.view} (reads ${v.tenantTables.join(', ')})`).join('; ')}.`,
          ),
        ];
  const names = views.map((v) => qt(v.view));
  return [
    {
      about: [
        `Makes the ${views.length} view${views.length === 1 ? '' : 's'} over tenant tables run as the invoker (security_invoker), so row level security filters what they show.`,
        '',
        ...wrap(
          `A view runs as its owner by default: ${views.map((v) => `${v.view} (owner ${v.owner}${v.ownerBypassesRls ? ', who bypasses row level security' : ''})`).join(', ')} would show every tenant's rows to a reader whose own queries see one. As the invoker, the reader's policies apply, and the reader needs SELECT on the tables the view reads (grant it to the app role if the view was its only way in). Views over views are changed together: an outer view that runs as its owner would read the inner one as that owner. Safe on a live database: a catalog change under a brief lock (waiting at most 2s, then retried); no data is read.`,
        ),
        ...copies,
      ],
      directives: [noSnapshot, ...lockSafe],
      body: names.map((v) => `ALTER VIEW ${v} SET (security_invoker = on)`),
      verifies: [
        {
          name: 'every view over a tenant table runs as the invoker',
          sql: `SELECT c.oid::regclass AS view FROM pg_class c\n WHERE c.oid IN (${names.map((v) => `${quoteLiteral(v)}::regclass`).join(', ')})\n   AND NOT coalesce('security_invoker=on' = ANY (c.reloptions) OR 'security_invoker=true' = ANY (c.reloptions), false)`,
        },
      ],
    },
    {
      about: ['Puts back how each view ran before the unit: as its owner.'],
      directives: [noSnapshot, ...lockSafe],
      body: views.map((v) =>
        v.securityInvoker === false
          ? `ALTER VIEW ${qt(v.view)} SET (security_invoker = off)`
          : `ALTER VIEW ${qt(v.view)} RESET (security_invoker)`,
      ),
    },
  ];
}
