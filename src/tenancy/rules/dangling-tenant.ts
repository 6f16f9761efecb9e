import { quoteIdent, quoteQualified } from '../sql-text.js';
import { rowIdentity, violationQuery } from './sample-sql.js';
import { always, comparable, type DataRule } from './types.js';

/**
 * Keys that name no tenant: a foreign key left NOT VALID, or triggers disabled during a
 * load, let them in. An anti-join on the tenants table's primary key index; the
 * validated foreign key is not trusted, since `session_replication_role = replica` skips it.
 */
export const danglingTenant: DataRule = {
  kind: 'data',
  name: 'dangling-tenant',
  description: 'keys that name no row of the tenants table',
  fix: 'point these rows at an existing tenant (or delete them), then VALIDATE the foreign key on the key',
  level: always('error'),
  queries: (scope) => {
    const tenants = scope.tenants;
    if (!tenants) return [];
    return comparable(scope).map((t) => {
      const key = `t.${quoteIdent(t.key)}`;
      const from =
        `  FROM ${quoteQualified(t.name)} t\n` +
        ` WHERE ${key} IS NOT NULL\n` +
        `   AND NOT EXISTS (SELECT 1 FROM ${quoteQualified(tenants.table.name)} o WHERE o.${quoteIdent(tenants.column)} = ${key})`;
      const id = rowIdentity(t, 't');
      return {
        table: t.name,
        detail: `${t.key} names no row of ${tenants.table.name}`,
        sql: violationQuery(`${t.name}: keys that name no tenant`, [...id.columns, key], from, id.order),
      };
    });
  },
};
