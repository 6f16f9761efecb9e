import { analyze, modelToWrite, writeTenancyModel } from '../../app/tenancy-analyze.js';
import { ExitCode, UsageError } from '../../errors.js';
import { createOutput } from '../../ui/output.js';
import { analyzeJson, dotGraph, analyzeSummary, mermaidGraph, renderAnalyzeTable } from '../../ui/tenancy-view.js';
import type { CommonOptions } from '../common.js';
import { requireDatabase } from '../target.js';

interface AnalyzeCliOptions extends CommonOptions {
  owner?: string;
  tenants?: string;
  key?: string;
  schema?: string[];
  fixture?: string;
  data?: boolean;
  write?: boolean;
  format?: 'table' | 'mermaid' | 'dot';
}

export default async function tenancyAnalyzeCommand(options: AnalyzeCliOptions): Promise<number> {
  const out = createOutput(options);
  if (options.fixture && options.databaseUrl)
    throw new UsageError('analyze reads one database: -d <url> or --fixture <file.sql>, not both', { code: 'source-conflict' });
  const url = options.fixture ? undefined : requireDatabase(options);
  const data = options.data !== false;
  const spinner = data && !options.json ? await out.spinner('reading the catalog') : undefined;
  let result;
  try {
    result = await analyze({
      url,
      fixture: options.fixture,
      fixtureServerUrl: process.env['TENANTIFY_REHEARSE_SERVER_URL'],
      dir: options.dir,
      owner: options.owner,
      tenants: options.tenants,
      key: options.key,
      schemas: options.schema,
      data,
      onProgress: (done, total, running) =>
        spinner?.update(`counting unresolved rows and conflicts: ${done}/${total}${running ? ` (${running})` : ''}`),
      log: (line) => out.log(line),
    });
  } finally {
    spinner?.stop();
  }
  const { analysis } = result;
  if (out.json) out.result(analyzeJson(analysis));
  else if (options.format === 'mermaid') out.line(mermaidGraph(analysis));
  else if (options.format === 'dot') out.line(dotGraph(analysis));
  else {
    out.line(`Tenancy of ${result.database}: ${analyzeSummary(analysis, result.data)}`);
    renderAnalyzeTable(out, analysis, result.data);
    if (!result.data) out.line(out.style.dim('(--no-data: rows are estimates; unresolved rows and conflicts were not counted)'));
  }
  if (options.write) {
    const file = await writeTenancyModel(options.dir, modelToWrite(result.model, analysis));
    out.log(`The model is stored in ${file} under "tenancy".`);
  }
  return ExitCode.ok;
}
