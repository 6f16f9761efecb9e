/** `tenancy check`: a table per failing rule (errors, then warnings), a last line of what passed; or the contract's JSON. */
import Table from 'cli-table3';
import type { TenancyCheckResult } from '../app/tenancy-check.js';
import { shortName } from '../tenancy/check-scope.js';
import { rules } from '../tenancy/rules/index.js';
import type { Finding } from '../tenancy/rules/types.js';
import type { Output } from './output.js';

/** Exactly the contract's document. */
export function tenancyCheckJson(result: TenancyCheckResult) {
  return {
    findings: result.findings.map((f) => ({
      rule: f.rule,
      level: f.level,
      table: f.table,
      detail: f.detail,
      rows: f.rows,
      sample: f.sample,
    })),
    checked: result.checked,
  };
}

export function renderTenancyCheck(out: Output, result: TenancyCheckResult): void {
  const { style } = out;
  out.line(
    `Tenant isolation of ${result.database}: owner ${shortName(result.owner)}, tenants ${shortName(result.tenants)}, key ${result.key}`,
  );
  const byRule = new Map<string, Finding[]>();
  for (const f of result.findings) byRule.set(f.rule, [...(byRule.get(f.rule) ?? []), f]);
  for (const [name, findings] of byRule) {
    const rule = rules.find((r) => r.name === name);
    const level = findings[0]?.level ?? 'error';
    const mark = level === 'error' ? style.red('✖ error') : style.yellow('⚠ warning');
    out.line();
    out.line(`${mark} ${style.bold(name)}: ${rule?.description ?? ''}`);
    const withRows = findings.some((f) => f.rows !== null);
    const head = withRows ? ['table', 'finding', 'rows', 'first rows'] : ['table', 'finding'];
    // Fixed widths (which cut long names) on a terminal only: piped, every name is whole.
    const table = new Table({
      head: head.map((h) => style.bold(h)),
      style: { head: [], border: [] },
      ...out.tableLayout(withRows ? [22, 60, 8, 44] : [22, 110]),
    });
    for (const f of findings)
      table.push(
        withRows ? [shortName(f.table), f.detail, f.rows === null ? '' : String(f.rows), sampleCell(f)] : [shortName(f.table), f.detail],
      );
    out.line(table.toString());
    if (rule) out.line(style.dim(`  fix: ${rule.fix}`));
  }
  out.line();
}

function sampleCell(f: Finding): string {
  const lines = f.sample.map((row) => JSON.stringify(row));
  if (f.rows !== null && f.rows > f.sample.length && f.sample.length > 0) lines.push(`... and ${f.rows - f.sample.length} more`);
  return lines.join('\n');
}

/** The last line: what passed, and what failed. */
export function tenancyCheckSummary(out: Output, result: TenancyCheckResult): string {
  const errors = result.findings.filter((f) => f.level === 'error').length;
  const warnings = result.findings.length - errors;
  const tables = `${result.checked.tables} table${result.checked.tables === 1 ? '' : 's'}`;
  const passed = `${result.passed.length} of ${result.checked.rules} rules passed on ${tables}${result.passed.length ? ` (${result.passed.join(', ')})` : ''}`;
  const probe = result.probeSkipped ? `; probe not run: ${result.probeSkipped}` : '';
  if (result.findings.length === 0) return out.style.green(`Isolated: ${passed}${probe}.`);
  const counts = [
    errors ? `${errors} error${errors === 1 ? '' : 's'}` : '',
    warnings ? `${warnings} warning${warnings === 1 ? '' : 's'}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  const say = result.ok ? out.style.yellow : out.style.red;
  return say(`${result.ok ? 'Isolated, with' : 'NOT isolated:'} ${counts}; ${passed}${probe}.`);
}
