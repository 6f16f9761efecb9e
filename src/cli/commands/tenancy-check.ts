import { tenancyCheck, type TenancyCheckResult } from '../../app/tenancy-check.js';
import { ExitCode } from '../../errors.js';
import { createOutput } from '../../ui/output.js';
import { renderTenancyCheck, tenancyCheckJson, tenancyCheckSummary } from '../../ui/tenancy-check-view.js';
import type { CommonOptions } from '../common.js';
import { requireDatabase } from '../target.js';

interface TenancyCheckCliOptions extends CommonOptions {
  owner?: string;
  tenants?: string;
  key?: string;
  schema?: string[];
  fixture?: string;
  as?: string;
  strict?: boolean;
  rule?: string[];
  table?: string[];
}

export default async function tenancyCheckCommand(options: TenancyCheckCliOptions): Promise<number> {
  const out = createOutput(options);
  const result = await tenancyCheck({
    dir: options.dir,
    url: options.fixture ? undefined : requireDatabase(options),
    fixture: options.fixture,
    owner: options.owner,
    tenants: options.tenants,
    key: options.key,
    schemas: options.schema,
    as: options.as,
    strict: options.strict,
    rules: options.rule,
    tables: options.table,
    log: (line) => out.log(line),
  });
  if (out.json) out.result(tenancyCheckJson(result));
  else renderTenancyCheck(out, result);
  out.line(tenancyCheckSummary(out, result));
  return tenancyCheckExitCode(result);
}

/** 3 when isolation is not proven (an error-level finding; with --strict, any finding), else 0. */
export function tenancyCheckExitCode(result: TenancyCheckResult): number {
  return result.ok ? ExitCode.ok : ExitCode.violations;
}
