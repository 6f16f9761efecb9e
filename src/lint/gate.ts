/** apply's lint gate: with `lint.level` error, a unit to run with an error-level finding no allow covers is refused. */
import type { Session } from '../db/connection.js';
import { UsageError } from '../errors.js';
import type { Config } from '../plan/config.js';
import type { Unit } from '../plan/types.js';
import { tableRows } from './catalog.js';
import { blockingFindings, lintPlan } from './lint.js';

/** What the gate reads of the project: where the plan is and how it is configured. */
export interface LintedProject {
  directory: string;
  config: Config;
}

export async function ensureLintAllows(
  project: LintedProject,
  units: Unit[],
  session: Session,
  note: (text: string) => void,
): Promise<void> {
  if (project.config.lint.level !== 'error' || units.length === 0) return;
  const report = await lintPlan({
    directory: project.directory,
    config: project.config,
    units,
    rollbacks: false,
    tableRows: (tables) => tableRows(session.client, tables),
  });
  // Without squawk, tenantify's own rules still judge; a missing binary never stops a run.
  if (!report.squawk.available) note(`squawk is not available (${report.squawk.reason}): the lint gate checked tenantify's own rules only`);
  const blocking = blockingFindings(report.findings);
  const [first] = blocking;
  if (!first) return;
  throw new UsageError(
    `lint: ${first.unit} (${first.file}:${first.line}) breaks ${first.rule}${blocking.length > 1 ? `, and ${blocking.length - 1} more finding${blocking.length === 2 ? '' : 's'} below` : ''}; lint.level is error, so nothing was run`,
    {
      code: 'lint-refused',
      hint: 'apply the safe rewrite, or accept the risk in the unit with `-- tenantify:allow <rule> <why>` (or lower the rule in lint.rules of tenantify.config.json)',
      details: blocking.map((f) => `${f.file}:${f.line}: ${f.rule} (${f.source}): ${f.message}`),
    },
  );
}
