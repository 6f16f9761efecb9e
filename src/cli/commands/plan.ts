import { inspect } from '../../app/inspect.js';
import { withSession } from '../../db/connection.js';
import { tableRows } from '../../lint/catalog.js';
import { blockingFindings, lintPlan } from '../../lint/lint.js';
import type { LintReport } from '../../lint/types.js';
import { squawkMissingNote } from '../../ui/lint-view.js';
import { createOutput } from '../../ui/output.js';
import { renderUnitsTable } from '../../ui/plan-view.js';
import { statusJson } from '../../ui/status-view.js';
import { hasLibpqEnvironment, resolveDatabaseUrl, type CommonOptions } from '../common.js';

export default async function plan(options: CommonOptions): Promise<number> {
  const out = createOutput(options);
  const url = resolveDatabaseUrl(options);
  const offline = !url && !hasLibpqEnvironment();
  const inspection = await inspect({ dir: options.dir, url, offline });
  // The lint findings, as warnings: plan never fails on them (lint.level off: not even shown).
  const { project } = inspection;
  let lint: LintReport | undefined;
  if (project.config.lint.level !== 'off') {
    const run = (sizes?: (tables: string[]) => Promise<Map<string, number>>) =>
      lintPlan({ directory: project.directory, config: project.config, units: project.units, tableRows: sizes });
    lint = offline ? await run() : await withSession(url, 'plan', (session) => run((tables) => tableRows(session.client, tables)));
    const note = squawkMissingNote(lint);
    if (note) out.log(out.style.yellow(note));
  }
  if (out.json) {
    out.result(statusJson(inspection, lint?.findings));
    return 0;
  }
  const { plan: p } = inspection;
  out.line(offline ? 'No database given: every unit is shown as pending (pass -d to read the ledger).' : `Plan for ${inspection.database}`);
  renderUnitsTable(out, inspection, 'plan', lint?.findings);
  const drift = p.drifted.length + p.missing.length;
  out.line(
    `${p.entries.length} units; ${p.toRun.length} to run${lint ? lintSummary(lint, project.config.lint.level) : ''}${drift > 0 ? out.style.red(`; ${drift} drifted: apply will refuse`) : ''}.`,
  );
  return 0;
}

function lintSummary(lint: LintReport, level: 'warning' | 'error' | 'off'): string {
  const open = lint.findings.filter((f) => !f.allowed).length;
  const allowed = lint.findings.length - open;
  if (lint.findings.length === 0) return '; no lint findings';
  const blocking = blockingFindings(lint.findings).length;
  const refusal = level === 'error' && blocking > 0 ? ` (${blocking} at error level: apply will refuse, lint.level is error)` : '';
  return `; ${open} lint finding${open === 1 ? '' : 's'}${allowed > 0 ? ` and ${allowed} allowed` : ''}${refusal} (tenantify lint shows the rewrites)`;
}
