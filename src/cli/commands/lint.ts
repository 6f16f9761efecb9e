import { loadProject } from '../../app/project.js';
import { withSession } from '../../db/connection.js';
import { ExitCode } from '../../errors.js';
import { tableRows } from '../../lint/catalog.js';
import { blockingFindings, lintPlan } from '../../lint/lint.js';
import { countFindings, lintJson, renderFindings, squawkMissingNote } from '../../ui/lint-view.js';
import { createOutput } from '../../ui/output.js';
import { hasLibpqEnvironment, resolveDatabaseUrl, type CommonOptions } from '../common.js';

/** Exit 3 when an error-level finding is not allowed, as for violations of a check; 0 otherwise. */
export default async function lintCommand(options: CommonOptions): Promise<number> {
  const out = createOutput(options);
  const project = await loadProject(options.dir);
  const url = resolveDatabaseUrl(options);
  const lint = (sizes?: (tables: string[]) => Promise<Map<string, number>>) =>
    lintPlan({ directory: project.directory, config: project.config, units: project.units, tableRows: sizes });
  const report =
    url || hasLibpqEnvironment()
      ? await withSession(url, 'lint', (session) => lint((tables) => tableRows(session.client, tables)))
      : await lint();
  const note = squawkMissingNote(report);
  if (note) out.log(out.style.yellow(note));
  const blocking = blockingFindings(report.findings);
  if (out.json) {
    out.result(lintJson(report));
    return blocking.length > 0 ? ExitCode.violations : ExitCode.ok;
  }
  renderFindings(out, report);
  const sizes = report.tableSizes === 'skipped' ? ' (table sizes not read: pass -d for unbatched-update-large-table)' : '';
  const files = project.units.length;
  if (report.findings.length === 0) out.line(out.style.green(`No findings in ${files} unit${files === 1 ? '' : 's'}${sizes}.`));
  else
    out.line(
      `${countFindings(report.findings)} in ${files} unit${files === 1 ? '' : 's'}${sizes}.${blocking.length > 0 ? out.style.red(' Errors not allowed: fix them, or add `-- tenantify:allow <rule> <why>` to the unit.') : ''}`,
    );
  return blocking.length > 0 ? ExitCode.violations : ExitCode.ok;
}
