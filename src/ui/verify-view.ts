/** `verify`: a table of pass/fail per check, or the contract's JSON. */
import Table from 'cli-table3';
import type { VerifiedCheck, VerifyResult } from '../app/verify.js';
import type { Output } from './output.js';

export function verifyJson(result: VerifyResult) {
  return {
    database: result.database,
    ok: result.ok,
    checks: result.checks.map((c) => ({
      unit: c.unit,
      name: c.name,
      ok: c.ok,
      violations: c.violations,
      sample: c.sample,
      durationMs: c.durationMs,
      ...(c.error ? { error: c.error } : {}),
    })),
  };
}

export function renderVerifyTable(out: Output, result: VerifyResult): void {
  const { style } = out;
  const table = new Table({
    head: ['unit', 'check', 'result', 'rows returned'].map((h) => style.bold(h)),
    style: { head: [], border: [] },
    ...out.tableLayout([36, 40, 8, 56]),
  });
  for (const unit of result.units) {
    if (unit.checks.length === 0) table.push([unit.id, style.dim('(no verify queries stored)'), '', '']);
    for (const check of unit.checks)
      table.push([unit.id, check.name, check.ok ? style.green('pass') : style.red('FAIL'), failureCell(out, check)]);
  }
  out.line(table.toString());
}

function failureCell(out: Output, check: VerifiedCheck): string {
  if (check.error) return out.style.red(`the query failed: ${check.error}`);
  if (check.ok) return '';
  const lines = check.sample.map((row) => JSON.stringify(row));
  if (check.violations > check.sample.length) lines.push(out.style.dim(`... and ${check.violations - check.sample.length} more`));
  return [`${check.violations} row${check.violations === 1 ? '' : 's'}:`, ...lines].join('\n');
}

export function verifySummary(out: Output, result: VerifyResult): string {
  const failed = result.checks.filter((c) => !c.ok).length;
  const total = result.checks.length;
  if (result.units.length === 0) return 'Nothing is applied: there is no verify query to run.';
  if (failed === 0)
    return out.style.green(
      `All ${total} verify check${total === 1 ? '' : 's'} of ${result.units.length} applied unit${result.units.length === 1 ? '' : 's'} pass.`,
    );
  return out.style.red(`${failed} of ${total} verify check${total === 1 ? '' : 's'} failed.`);
}
