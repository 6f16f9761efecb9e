/** The cost of the policies, as the app role sees it (`--as ROLE`): its findings come from check-probe.ts. */
import type { ProbeRule } from './types.js';

export const rlsPolicyCost: ProbeRule = {
  kind: 'probe',
  name: 'rls-policy-cost',
  description:
    '`--as ROLE`: a policy that costs a scan of every row: EXPLAIN of a read as the role with the setting at one tenant finds no index serving the policy on a table past `lint.largeTableRows`, or the policy calls a VOLATILE function (evaluated per row)',
  fix: "an index led by the key (CREATE INDEX CONCURRENTLY ... (key)); compare the bare key column with (SELECT current_setting('<setting>')::<type>), not a cast of the column; mark the policy's functions STABLE",
  level: (analysis) => (analysis.rls ? 'warning' : null),
};
