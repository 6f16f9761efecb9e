/** Lint findings: a table for people, the contract's JSON for machines. */
import Table from 'cli-table3';
import type { Finding, LintReport } from '../lint/types.js';
import type { Output } from './output.js';

export function findingJson(f: Finding) {
  return {
    unit: f.unit,
    file: f.file,
    line: f.line,
    rule: f.rule,
    level: f.level,
    message: f.message,
    source: f.source,
    allowed: f.allowed,
    ...(f.allowed ? { reason: f.reason } : {}),
  };
}

export function lintJson(report: LintReport) {
  return {
    findings: report.findings.map(findingJson),
    squawk: report.squawk.available
      ? { available: true, version: report.squawk.version }
      : { available: false, reason: report.squawk.reason },
    tableSizes: report.tableSizes,
  };
}

/** The one line said when squawk could not run. */
export function squawkMissingNote(report: LintReport): string | undefined {
  const { available, reason, skipped = [] } = report.squawk;
  if (!available) return `squawk is not available (${reason}): only tenantify's own rules ran`;
  if (skipped.length > 0) return `squawk did not read ${skipped.join(', ')} (over 1 MB): only tenantify's own rules ran on it`;
  return undefined;
}

export function renderFindings(out: Output, report: LintReport): void {
  const { style } = out;
  if (report.findings.length === 0) return;
  const table = new Table({
    head: ['unit / file:line', 'rule (source)', 'level', 'message and safe rewrite'].map((h) => style.bold(h)),
    style: { head: [], border: [] },
    wordWrap: true,
    colWidths: [46, 38, 9, 64],
  });
  for (const f of report.findings) {
    const level = f.allowed ? style.dim('allowed') : f.level === 'error' ? style.red('error') : style.yellow('warning');
    const message = f.allowed ? `${f.message}\n${style.dim(`allowed: ${f.reason ?? ''}`)}` : f.message;
    table.push([hardWrap(`${f.unit}\n${f.file}:${f.line}`, 44), hardWrap(`${f.rule}\n(${f.source})`, 36), level, message]);
  }
  out.line(table.toString());
}

/** Paths and rule names have no spaces to wrap at: cut them at the column's width. */
function hardWrap(text: string, width: number): string {
  return text
    .split('\n')
    .flatMap((line) => line.match(new RegExp(`.{1,${width}}`, 'g')) ?? [''])
    .join('\n');
}

/** "2 errors, 1 warning, 3 allowed" */
export function countFindings(findings: Finding[]): string {
  const open = findings.filter((f) => !f.allowed);
  const errors = open.filter((f) => f.level === 'error').length;
  const warnings = open.length - errors;
  const allowed = findings.length - open.length;
  const n = (k: number, word: string): string => `${k} ${word}${k === 1 ? '' : 's'}`;
  return [n(errors, 'error'), n(warnings, 'warning'), ...(allowed > 0 ? [`${allowed} allowed`] : [])].join(', ');
}
