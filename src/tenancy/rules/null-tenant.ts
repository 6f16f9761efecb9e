import { quoteIdent, quoteQualified } from '../sql-text.js';
import { rowIdentity, violationQuery } from './sample-sql.js';
import { always, withKeyColumn, type DataRule } from './types.js';

/** Rows without a tenant: no policy can place them, and `key = setting` hides them from everyone (or, with a careless policy, shows them to all). */
export const nullTenant: DataRule = {
  kind: 'data',
  name: 'null-tenant',
  description: 'rows whose key is NULL',
  fix: 'backfill the key of these rows (or delete them), then make the column NOT NULL',
  level: always('error'),
  queries: (scope) =>
    withKeyColumn(scope)
      // `unresolved: keep` accepts rows no path resolves: their NULL key is the model's choice.
      .filter((t) => t.unresolved !== 'keep')
      .map((t) => {
        const key = `t.${quoteIdent(t.key)}`;
        const from = `  FROM ${quoteQualified(t.name)} t\n WHERE ${key} IS NULL`;
        const id = rowIdentity(t, 't');
        return {
          table: t.name,
          detail: `${t.key} is NULL`,
          sql: violationQuery(`${t.name}: rows without a tenant`, id.columns, from, id.order),
        };
      }),
};
