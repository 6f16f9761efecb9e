import { whenRls, type CatalogRule } from './types.js';

/**
 * A default for the tenant setting (`ALTER ROLE ... SET`, `ALTER DATABASE ... SET`, or
 * `ALTER ROLE ... IN DATABASE ... SET`): a connection that never sets the tenant is not
 * refused, it silently acts as the default one. With `--as`, the defaults of other roles
 * are left out (they apply to sessions of those roles only).
 */
export const tenantSettingDefault: CatalogRule = {
  kind: 'catalog',
  name: 'tenant-setting-default',
  description:
    'the setting has a default for a role or the database (`ALTER ROLE/DATABASE ... SET`): a connection that forgets to set the tenant silently acts as one',
  fix: 'ALTER ROLE ... RESET <setting> / ALTER DATABASE ... RESET <setting>: unset, the policies admit no row',
  level: whenRls,
  check: (scope) => {
    const setting = scope.analysis.setting;
    return scope.access.settingDefaults
      .filter((d) => !scope.appRole || d.role === null || d.role === scope.appRole)
      .map((d) => {
        const statement =
          d.role && d.database
            ? `ALTER ROLE ${d.role} IN DATABASE ${d.database}`
            : d.role
              ? `ALTER ROLE ${d.role}`
              : `ALTER DATABASE ${d.database ?? '?'}`;
        return {
          table: d.role ? `role ${d.role}` : `database ${d.database ?? '?'}`,
          detail: `${statement} SET ${setting} = '${d.value}': a connection${d.role ? ` as ${d.role}` : ''} that never sets ${setting} reads and writes as tenant ${d.value}`,
          rows: null,
          sample: [],
        };
      });
  },
};
