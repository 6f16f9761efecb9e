/** The live probe's rules (`--as ROLE`): their findings come from check-probe.ts. */
import { whenRls, type ProbeRule } from './types.js';

export const probeReadLeak: ProbeRule = {
  kind: 'probe',
  name: 'probe-read-leak',
  description: "`--as ROLE`: with the setting at tenant A, rows of another tenant are visible; or, with the setting unset, any tenant's",
  fix: 'force row level security, take BYPASSRLS and ownership away from the role, and make every policy compare the key with the setting',
  level: whenRls,
};

export const probeWriteLeak: ProbeRule = {
  kind: 'probe',
  name: 'probe-write-leak',
  description: "`--as ROLE`: with the setting at tenant A, an UPDATE or INSERT that gives a row tenant B's key goes through",
  fix: "WITH CHECK (key = current_setting('<setting>')::<type>) on every policy for INSERT, UPDATE or ALL",
  level: whenRls,
};
