import { tenancyScaffold } from '../../app/tenancy-scaffold.js';
import { ExitCode } from '../../errors.js';
import { createOutput } from '../../ui/output.js';
import type { CommonOptions } from '../common.js';
import { requireDatabase } from '../target.js';

interface TenancyScaffoldCliOptions extends CommonOptions {
  owner?: string;
  tenants?: string;
  key?: string;
  schema?: string[];
  fixture?: string;
  composite?: boolean;
  rls?: boolean;
  citus?: boolean;
  prisma?: string;
}

export default async function tenancyScaffoldCommand(options: TenancyScaffoldCliOptions): Promise<number> {
  const out = createOutput(options);
  const result = await tenancyScaffold({
    dir: options.dir,
    url: options.fixture ? undefined : requireDatabase(options),
    fixture: options.fixture,
    overrides: {
      ...(options.owner ? { owner: options.owner } : {}),
      ...(options.tenants ? { tenants: options.tenants } : {}),
      ...(options.key ? { key: options.key } : {}),
    },
    schemas: options.schema,
    composite: Boolean(options.composite),
    rls: Boolean(options.rls),
    citus: Boolean(options.citus),
    prisma: options.prisma,
    log: (line) => out.log(line),
  });
  if (out.json) {
    out.result({ files: result.files, present: result.present, config: result.config, tenancy: result.model, prisma: result.prisma });
    return ExitCode.ok;
  }
  const width = Math.max(...result.files.map((f) => f.file.length));
  for (const f of result.files) out.line(`${out.style.green('+')} ${f.file.padEnd(width)}  ${out.style.dim(f.summary)}`);
  const already =
    result.present.length > 0
      ? `${result.present.length} unit${result.present.length === 1 ? '' : 's'} of the scaffold already in the plan, left as ${result.present.length === 1 ? 'it is' : 'they are'}`
      : '';
  for (const path of result.prisma) out.line(`${out.style.green('+')} ${path}`);
  if (result.files.length === 0) {
    out.line(`${out.style.green('✔')} nothing to write: ${already}; the model is in ${result.config} under "tenancy".`);
    return ExitCode.ok;
  }
  out.line(
    `${out.style.green('✔')} ${result.files.length} units, each with its rollback in rollbacks/${already ? ` (${already})` : ''}; the model is in ${result.config} under "tenancy".`,
  );
  out.line(out.style.dim('Read them, then: tenantify rehearse --fixture <legacy.sql>, or tenantify apply.'));
  return ExitCode.ok;
}
