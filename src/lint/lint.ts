/**
 * lintPlan(): squawk's findings and tenantify's own, mapped to unit, file and line, with
 * the config's levels and the units' `-- tenantify:allow` applied. Reads files and runs
 * squawk; the rules themselves are pure (rules.ts).
 */
import type { Config } from '../plan/config.js';
import { isStreamed, type Script, type Unit } from '../plan/types.js';
import { ownRules, ruleSetting, rulesMootInRollbacks, squawkRules, type ParsedStatement, type RuleContext } from './rules.js';
import { runSquawk, type SquawkRun } from './squawk.js';
import { parsedStatements } from './trees.js';
import type { Finding, LintLevel, LintReport } from './types.js';

export interface LintOptions {
  directory: string;
  config: Config;
  units: Unit[];
  /** Also lint the units' rollback files (default true). */
  rollbacks?: boolean;
  /** Reads estimated table sizes (a database was given); without it, unbatched-update-large-table is skipped. */
  tableRows?: (tables: string[]) => Promise<Map<string, number>>;
  env?: NodeJS.ProcessEnv;
}

interface LintedFile {
  unit: Unit;
  script: Script;
  rollback: boolean;
}

export function lintedFiles(units: Unit[], rollbacks = true): LintedFile[] {
  return units.flatMap((unit) => [
    ...(unit.format === 'sql' ? [{ unit, script: unit as Script, rollback: false }] : []),
    ...(rollbacks && unit.rollback?.format === 'sql' ? [{ unit, script: unit.rollback, rollback: true }] : []),
  ]);
}

export async function lintPlan(options: LintOptions): Promise<LintReport> {
  const files = lintedFiles(options.units, options.rollbacks ?? true);
  // squawk holds a file's every statement (290 MB for 150,000 INSERTs): a file too large to
  // hold (streamed, sql-unit.ts) gets tenantify's own rules only, and the report says so.
  const tooLarge = files.filter((f) => isStreamed(f.script.statements)).map((f) => f.script.file);
  const squawking = runSquawk(
    options.directory,
    files.map((f) => f.script.file).filter((file) => !tooLarge.includes(file)),
    options.env,
  );
  const statements = await parsedStatements(files.map((f) => f.script));
  const parsed = files.map((f, i) => ({ ...f, statements: statements[i] ?? [] }));
  let tableRows: Map<string, number> | undefined;
  if (options.tableRows) {
    const written = parsed
      .filter((f) => !f.script.options.batch)
      .flatMap((f) => f.statements.map((s) => s.facts.rowWrite?.table ?? ''))
      .filter(Boolean);
    tableRows = await options.tableRows([...new Set(written)]);
  }
  const context: RuleContext = {
    configLockTimeoutMs: options.config.lockTimeout ?? undefined,
    tableRows,
    largeTableRows: options.config.lint.largeTableRows,
  };
  const raw: Omit<Finding, 'level' | 'allowed' | 'reason'>[] = [];
  for (const f of parsed) {
    for (const rule of ownRules) {
      for (const hit of rule.check(f.script, f.statements, context)) {
        raw.push({ unit: f.unit.id, file: f.script.file, line: hit.line, rule: rule.name, message: hit.message, source: 'tenantify' });
      }
    }
  }
  const squawk = await squawking;
  const proven = notNullProven(parsed);
  const validatedAlone = validatesCommittedAlone(parsed);
  raw.push(
    ...squawkFindings(squawk, files).filter(
      (f) =>
        !(f.rule === 'adding-not-nullable-field' && proven.has(`${f.file}:${f.line}`)) &&
        !(f.rule === 'constraint-missing-not-valid' && validatedAlone.has(`${f.file}:${f.line}`)),
    ),
  );
  raw.push(...unusedAllows(raw, files, { squawk: squawk.available, tableSizes: tableRows !== undefined }));
  const findings = settle(raw, files, options.config.lint.rules);
  return {
    findings,
    squawk: squawk.available
      ? { available: true, version: squawk.version, ...(tooLarge.length > 0 ? { skipped: tooLarge } : {}) }
      : { available: false, reason: squawk.reason },
    tableSizes: tableRows ? 'catalog' : 'skipped',
  };
}

/**
 * The `SET NOT NULL` statements (as `file:line`) that PostgreSQL proves from a validated
 * `CHECK (column IS NOT NULL)` without scanning the table: the check added valid, or added
 * NOT VALID and validated, by an earlier statement of the plan's units (in plan order,
 * rollbacks aside) and not dropped since. squawk flags every SET NOT NULL; these are the
 * safe pattern it recommends, so its finding is left out.
 */
export function notNullProven(files: (LintedFile & { statements: ParsedStatement[] })[]): Set<string> {
  const bare = (table: string): string => table.replace(/^public\./, '');
  const checks = new Map<string, { column: string; valid: boolean }>();
  const proven = new Set<string>();
  for (const f of files) {
    if (f.rollback) continue;
    for (const s of f.statements) {
      for (const step of s.facts.notNull ?? []) {
        const table = bare(step.table);
        if (step.op === 'add-check') checks.set(`${table}\0${step.name}`, { column: step.column, valid: step.valid });
        else if (step.op === 'drop-constraint') checks.delete(`${table}\0${step.name}`);
        else if (step.op === 'validate') {
          const check = checks.get(`${table}\0${step.name}`);
          if (check) check.valid = true;
        } else if ([...checks].some(([key, c]) => key.startsWith(`${table}\0`) && c.column === step.column && c.valid))
          proven.add(`${f.script.file}:${s.line}`);
      }
    }
  }
  return proven;
}

/**
 * `VALIDATE CONSTRAINT` statements (as `file:line`) of `transaction off` files: each statement
 * commits on its own, so the validation runs under SHARE UPDATE EXCLUSIVE alone, not inside
 * the transaction that added the constraint NOT VALID (squawk, told to assume a transaction,
 * flags it as if it were).
 */
function validatesCommittedAlone(files: (LintedFile & { statements: ParsedStatement[] })[]): Set<string> {
  const alone = new Set<string>();
  for (const f of files) {
    if (f.script.options.transaction) continue;
    for (const s of f.statements)
      if ((s.facts.notNull ?? []).some((step) => step.op === 'validate')) alone.add(`${f.script.file}:${s.line}`);
  }
  return alone;
}

function squawkFindings(squawk: SquawkRun, files: LintedFile[]): Omit<Finding, 'level' | 'allowed' | 'reason'>[] {
  if (!squawk.available) return [];
  const byFile = new Map(files.map((f) => [f.script.file, f]));
  const result: Omit<Finding, 'level' | 'allowed' | 'reason'>[] = [];
  for (const s of squawk.findings) {
    const f = byFile.get(s.file.replace(/\\/g, '/').replace(/^\.\//, ''));
    if (!f) continue;
    if (f.rollback && rulesMootInRollbacks.has(s.rule)) continue;
    const rewrite = squawkRules[s.rule]?.rewrite;
    const help = rewrite ? `Instead: ${rewrite}.` : (s.help ?? '');
    result.push({
      unit: f.unit.id,
      file: f.script.file,
      line: s.line,
      rule: s.rule,
      message: `${s.message}${help ? ` ${help}` : ''}`,
      source: 'squawk',
    });
  }
  return result;
}

/**
 * An allow that covers no finding has outlived its reason (the statement was fixed, or the
 * rule is misspelt): said once, so it does not silently cover the next risky statement.
 * Not judged when the rule could not run (squawk missing, table sizes not read).
 */
function unusedAllows(
  raw: Omit<Finding, 'level' | 'allowed' | 'reason'>[],
  files: LintedFile[],
  ran: { squawk: boolean; tableSizes: boolean },
): Omit<Finding, 'level' | 'allowed' | 'reason'>[] {
  const own = new Set(ownRules.map((r) => r.name));
  const result: Omit<Finding, 'level' | 'allowed' | 'reason'>[] = [];
  for (const f of files) {
    for (const allow of f.script.options.allow ?? []) {
      if (raw.some((r) => r.file === f.script.file && r.rule === allow.rule)) continue;
      if (!own.has(allow.rule) && (!ran.squawk || isStreamed(f.script.statements))) continue;
      if (allow.rule === 'unbatched-update-large-table' && !ran.tableSizes) continue;
      result.push({
        unit: f.unit.id,
        file: f.script.file,
        line: allow.line,
        rule: 'unused-allow',
        message: `\`-- tenantify:allow ${allow.rule}\` covers no finding in this file: remove it (or check the rule's name).`,
        source: 'tenantify',
      });
    }
  }
  return result;
}

/** Levels from the config (off drops a finding), allows from the file, in file and line order. */
function settle(raw: Omit<Finding, 'level' | 'allowed' | 'reason'>[], files: LintedFile[], configured: Config['lint']['rules']): Finding[] {
  const order = new Map(files.map((f, i) => [f.script.file, i]));
  const allows = new Map(files.map((f) => [f.script.file, f.script.options.allow ?? []]));
  const findings: Finding[] = [];
  for (const r of raw) {
    const setting = ruleSetting(r.rule, r.source, configured);
    if (setting === 'off') continue;
    const allow = allows.get(r.file)?.find((a) => a.rule === r.rule);
    findings.push({ ...r, level: setting as LintLevel, allowed: Boolean(allow), ...(allow ? { reason: allow.reason } : {}) });
  }
  return findings.sort((a, b) => (order.get(a.file) ?? 0) - (order.get(b.file) ?? 0) || a.line - b.line || a.rule.localeCompare(b.rule));
}

/** Error-level findings no allow covers: what makes `lint` exit 3, and `apply` refuse under lint.level error. */
export function blockingFindings(findings: Finding[]): Finding[] {
  return findings.filter((f) => f.level === 'error' && !f.allowed);
}
