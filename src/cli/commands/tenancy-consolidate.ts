import { tenancyConsolidate } from '../../app/tenancy-consolidate.js';
import { ExitCode, UsageError } from '../../errors.js';
import { createOutput } from '../../ui/output.js';
import type { CommonOptions } from '../common.js';
import { requireDatabase } from '../target.js';

interface TenancyConsolidateCliOptions extends CommonOptions {
  fromSchemas?: string;
  fromDatabases?: string;
  sourceSchema?: string;
  into?: string;
  exclude?: string[];
  reference?: string;
  tenants?: string;
  key?: string;
  ids?: string;
  batchSize?: number;
  freeze?: boolean;
  parallel?: number;
  citus?: boolean;
}

export default async function tenancyConsolidateCommand(options: TenancyConsolidateCliOptions): Promise<number> {
  const out = createOutput(options);
  if (Boolean(options.fromSchemas) === Boolean(options.fromDatabases)) {
    throw new UsageError('which sources? pass --from-schemas PATTERN or --from-databases FILE (one of them)', {
      code: 'consolidate-no-sources',
      hint: "e.g. --from-schemas 'customer_%', or --from-databases sources.txt with `name postgres://user@host/db` per line",
    });
  }
  const ids = options.ids ?? 'keep';
  if (ids !== 'keep' && ids !== 'remap') throw new UsageError(`--ids ${ids}: expected keep or remap`, { code: 'consolidate-ids-invalid' });
  const result = await tenancyConsolidate({
    dir: options.dir,
    url: requireDatabase(options),
    fromSchemas: options.fromSchemas,
    fromDatabases: options.fromDatabases,
    sourceSchema: options.sourceSchema,
    exclude: options.exclude,
    reference: options.reference,
    into: options.into,
    tenants: options.tenants,
    key: options.key,
    ids,
    batchSize: options.batchSize,
    freeze: options.freeze,
    parallel: options.parallel,
    citus: options.citus,
  });
  if (out.json) {
    out.result({ reference: result.reference, sources: result.sources, files: result.files, config: result.config, tenancy: result.model });
    return ExitCode.ok;
  }
  const width = Math.max(...result.files.map((f) => f.file.length));
  for (const f of result.files) out.line(`${out.style.green('+')} ${f.file.padEnd(width)}  ${out.style.dim(f.summary)}`);
  const rows = result.sources.reduce((n, s) => n + s.rows, 0);
  out.line(
    `${out.style.green('✔')} ${result.sources.length} sources of the shape of ${result.reference} (${rows} rows), one unit each; the model is in ${result.config} under "tenancy".`,
  );
  out.line(
    out.style.dim(
      'Read them, then: tenantify apply; tenantify rollback removes the newest tenant, rollback --all the whole consolidation.',
    ),
  );
  return ExitCode.ok;
}
