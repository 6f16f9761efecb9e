/**
 * A SQL unit: header directives, then statements split by PostgreSQL's own parser
 * (libpg-query, sql-split.ts): a `precheck` or `verify` marker takes the one SELECT after
 * it, and the statements in no section are the body, wherever they stand.
 */
import { PlanError } from '../errors.js';
import { directivePrefix, parseDirectives, sectionNames, type DirectiveDefaults, type DirectiveLine } from './directives.js';
import { unitFingerprint } from './fingerprint.js';
import { splitStatements, type SplitStatement, type Splits } from './sql-split.js';
import type { Check, Statement, UnitOptions } from './types.js';

export { loadSqlParser } from './sql-split.js';

export interface ParsedSql {
  options: UnitOptions;
  /** What the unit runs, without comments, whitespace or layout (fingerprint.ts). */
  fingerprint: string;
  statements: Statement[];
  prechecks: Check[];
  verifies: Check[];
  writes: string[];
}

/**
 * Parses a unit's text. `splits`: the split cache (sql-split.ts's `openSplits`), or none to
 * parse every statement.
 */
export function parseSqlUnit(file: string, text: string, defaults: DirectiveDefaults, splits?: Splits): ParsedSql {
  const lines = text.split('\n');
  const header: DirectiveLine[] = [];
  let bodyStart = lines.length;
  for (let i = 0; i < lines.length; i++) {
    const trimmed = (lines[i] ?? '').trim();
    if (trimmed === '') continue;
    if (!trimmed.startsWith('--')) {
      bodyStart = i;
      break;
    }
    const match = directivePrefix.exec(trimmed);
    if (!match) continue;
    if ((sectionNames as readonly string[]).includes(match[1] ?? '')) {
      bodyStart = i;
      break;
    }
    header.push({ name: match[1] ?? '', value: match[2] ?? '', line: i + 1 });
  }
  const options = parseDirectives(file, header, defaults);

  // A section marker applies to the one statement after it; every other statement is the body.
  const markers: { section: 'precheck' | 'verify'; name: string; line: number }[] = [];
  for (let i = bodyStart; i < lines.length; i++) {
    const match = directivePrefix.exec((lines[i] ?? '').trim());
    if (!match) continue;
    const name = match[1] ?? '';
    if (name === 'precheck' || name === 'verify') {
      if (!match[2])
        throw new PlanError(`a ${name} section needs a name: -- tenantify:${name} <what must hold>`, {
          code: 'section-invalid',
          file,
          line: i + 1,
        });
      markers.push({ section: name, name: match[2], line: i + 1 });
    } else {
      throw new PlanError(`directive "tenantify:${name}" must come before the first statement`, {
        code: 'directive-misplaced',
        file,
        line: i + 1,
      });
    }
  }

  const all = splitStatements(file, lines.slice(bodyStart).join('\n'), bodyStart + 1, splits);
  if (all.length === 0)
    throw new PlanError('the unit has no statement', { file, code: 'unit-empty', hint: "write the unit's SQL in it, or delete the file" });
  const inSection = new Set<SplitStatement>();
  const checks: { section: string; name: string; fingerprint: string }[] = [];
  const prechecks: Check[] = [];
  const verifies: Check[] = [];
  markers.forEach((marker, index) => {
    const next = markers[index + 1];
    const first = all.find((s) => s.line > marker.line);
    if (!first || (next && first.line > next.line))
      throw new PlanError(
        `the ${marker.section} section "${marker.name}" has no query: a section marker applies to the one statement after it`,
        { code: 'section-invalid', file, line: marker.line },
      );
    if (!first.isQuery) {
      throw new PlanError(`the ${marker.section} section "${marker.name}" must be exactly one SELECT that returns the violating rows`, {
        code: 'section-invalid',
        file,
        line: first.line,
      });
    }
    inSection.add(first);
    checks.push({ section: marker.section, name: marker.name, fingerprint: first.fingerprint });
    const check: Check = { section: marker.section, name: marker.name, sql: first.sql, line: first.line };
    (marker.section === 'precheck' ? prechecks : verifies).push(check);
  });
  const statements = all.filter((s) => !inSection.has(s));
  if (statements.length === 0) {
    throw new PlanError("the unit's body is empty: every statement is in a precheck or verify section", {
      code: 'unit-body-empty',
      file,
      line: markers[0]?.line,
      hint: 'a section marker applies to the one statement after it; the statements in no section are the body',
    });
  }

  const params = statements.flatMap((s) => s.params);
  if (options.batch) {
    if (statements.length !== 1) {
      throw new PlanError(`a batched unit has exactly one statement, run once per key range; this one has ${statements.length}`, {
        code: 'batch-invalid',
        file,
        line: statements[1]?.line,
      });
    }
    if (!params.includes(1) || !params.includes(2)) {
      throw new PlanError('a batched statement must use $1 (exclusive lower bound of the key) and $2 (inclusive upper bound)', {
        code: 'batch-invalid',
        file,
        line: statements[0]?.line,
      });
    }
    if (!options.transaction)
      throw new PlanError('batch and transaction off cannot be combined: every batch is its own transaction', {
        code: 'batch-invalid',
        file,
      });
  } else if (params.length > 0) {
    throw new PlanError('parameters ($1, $2) are only allowed in a batched unit (-- tenantify:batch <table> key=<column>)', {
      code: 'parameters-outside-batch',
      file,
      line: statements.find((s) => s.params.length > 0)?.line,
    });
  }
  const control = statements.find((s) => s.isTransactionControl);
  if (control) {
    throw new PlanError('BEGIN, COMMIT and ROLLBACK do not belong in a unit', {
      code: 'transaction-control',
      file,
      line: control.line,
      hint: 'tenantify runs each unit in its own transaction (or statement by statement with `-- tenantify:transaction off`)',
    });
  }
  const reset = statements.find((s) => s.releasesRunLock);
  if (reset) {
    throw new PlanError(
      "DISCARD ALL and pg_advisory_unlock_all() do not belong in a unit: they release the run's lock, so a second run could start beside this one",
      {
        code: 'releases-run-lock',
        file,
        line: reset.line,
        hint: 'DISCARD PLANS, TEMP or SEQUENCES reset one thing each; release an advisory lock of your own with pg_advisory_unlock(key)',
      },
    );
  }
  if (options.transaction) {
    const concurrent = statements.find((s) => s.mustRunAlone);
    if (concurrent) {
      throw new PlanError(`this statement cannot run inside a transaction block`, {
        code: 'needs-transaction-off',
        file,
        line: concurrent.line,
        hint: 'add `-- tenantify:transaction off` at the top of the unit; its statements then run one by one',
      });
    }
  }
  const writes = [...new Set(statements.flatMap((s) => s.writes))];
  return {
    options,
    fingerprint: unitFingerprint({ options, statements, checks }),
    statements: statements.map(({ sql, line, column, hash, createsIndex }) => ({ sql, line, column, hash, createsIndex })),
    prechecks,
    verifies,
    writes,
  };
}
