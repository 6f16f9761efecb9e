/**
 * A SQL unit: header directives, then statements split by PostgreSQL's own parser
 * (libpg-query, sql-split.ts): a `precheck` or `verify` marker takes the one SELECT after
 * it, and the statements in no section are the body, wherever they stand.
 *
 * The text is read as it goes by, line by line for the directives and markers, a piece at a
 * time for the statements, and what the unit needs (fingerprint, checks, what it writes, the
 * rules a statement breaks) is taken on the way. A unit in memory keeps its statements; a
 * unit file too large to hold them (`readSqlUnit`: tens of megabytes of generated INSERTs)
 * keeps only their count, and its statements are read again from the file when they run.
 */
import { statSync } from 'node:fs';
import { PlanError } from '../errors.js';
import {
  batchSchema,
  directivePrefix,
  parseDirectives,
  rangesUsage,
  sectionNames,
  type DirectiveDefaults,
  type DirectiveLine,
} from './directives.js';
import { UnitFingerprint } from './fingerprint.js';
import { splitStatements, streamStatements, type SplitStatement, type Splits } from './sql-split.js';
import type { BatchDirective, Check, Statement, Statements, StatementStream, UnitOptions } from './types.js';
import { unitFileText } from './unit-file.js';

export { loadSqlParser } from './sql-split.js';

/** A unit file larger than this is read as a stream (`readSqlUnit`): its statements are not held. */
export const streamedUnitBytes = 1024 * 1024;

export interface ParsedSql {
  options: UnitOptions;
  /** What the unit runs, without comments, whitespace or layout (fingerprint.ts). */
  fingerprint: string;
  statements: Statements;
  prechecks: Check[];
  verifies: Check[];
  writes: string[];
}

/**
 * Parses a unit's text. `splits`: the split cache (sql-split.ts's `openSplits`), or none to
 * parse every statement.
 */
export function parseSqlUnit(
  file: string,
  text: string,
  defaults: DirectiveDefaults,
  splits?: Splits,
): ParsedSql & { statements: Statement[] } {
  const lines = new UnitLines(file, [text]);
  const options = parseDirectives(file, lines.header(), defaults);
  const body = [...lines.body()].join('');
  const unit = foldUnit(file, options, splitStatements(file, body, lines.bodyLine, splits), lines.markers, true);
  return { ...unit.parsed, statements: unit.kept };
}

/**
 * Reads a unit file a chunk at a time (one over `streamedUnitBytes`): the same checks and
 * fingerprint as `parseSqlUnit`, and its checksum, holding a piece of it at a time. Its
 * statements are read again from the file each time they are walked; a file changed since
 * is refused there (`unit-changed`).
 */
export function readSqlUnit(file: string, path: string, defaults: DirectiveDefaults): ParsedSql & { checksum: string } {
  const { size, mtimeMs } = statSync(path);
  let checksum = '';
  const lines = new UnitLines(
    file,
    unitFileText(path, (sum) => (checksum = sum)),
  );
  const options = parseDirectives(file, lines.header(), defaults);
  const unit = foldUnit(file, options, streamStatements(file, lines.body(), lines.bodyLine), lines.markers, false);
  const inSection = unit.inSection;
  const statements: StatementStream = {
    streamed: true,
    length: unit.count,
    *[Symbol.iterator]() {
      const changed = (): PlanError =>
        new PlanError('changed since the plan was read', {
          code: 'unit-changed',
          file,
          hint: 'run the command again: it reads the file as it is now',
        });
      const now = statSync(path);
      if (now.size !== size || now.mtimeMs !== mtimeMs) throw changed();
      let again = '';
      const reread = new UnitLines(
        file,
        unitFileText(path, (sum) => (again = sum)),
      );
      reread.header();
      for (const s of streamStatements(file, reread.body(), reread.bodyLine)) {
        if (!inSection.has(at(s))) yield bodyStatement(s);
      }
      if (again !== checksum) throw changed();
    },
  };
  return { ...unit.parsed, statements, checksum };
}

const at = (s: { line: number; column: number }): string => `${s.line}:${s.column}`;

const bodyStatement = ({ sql, line, column, hash, createsIndex }: SplitStatement): Statement => ({ sql, line, column, hash, createsIndex });

interface Marker {
  section: 'precheck' | 'verify';
  name: string;
  line: number;
  /** A precheck's `tenantify:ranges` line under it, and where. */
  ranges?: BatchDirective;
  rangesLine?: number;
}

/**
 * A unit's text line by line, as it goes by: the header's directives, then the body's text
 * (for the splitter), its section markers noted as their lines pass. A NUL byte is refused
 * at its line (the parser cannot take it).
 */
class UnitLines {
  private readonly source: Iterator<string>;
  private text = '';
  private ended = false;
  /** Lines read so far. */
  private line = 0;
  /** The body's first line in the file (1-based), once the header is read. */
  bodyLine = 1;
  readonly markers: Marker[] = [];

  constructor(
    private readonly file: string,
    chunks: Iterable<string>,
  ) {
    this.source = chunks[Symbol.iterator]();
  }

  private more(): boolean {
    const next = this.source.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    this.text += next.value;
    return true;
  }

  /** The header's directive lines, up to the first statement or section marker. */
  header(): DirectiveLine[] {
    const header: DirectiveLine[] = [];
    for (;;) {
      let nl = this.text.indexOf('\n');
      while (nl === -1 && this.more()) nl = this.text.indexOf('\n');
      if (nl === -1 && this.text === '') break;
      const text = nl === -1 ? this.text : this.text.slice(0, nl);
      const trimmed = text.trim();
      const match = trimmed.startsWith('--') ? directivePrefix.exec(trimmed) : null;
      if ((trimmed !== '' && !trimmed.startsWith('--')) || (sectionNames as readonly string[]).includes(match?.[1] ?? '')) break;
      this.line++;
      this.refuseNul(text, this.line);
      if (match) header.push({ name: match[1] ?? '', value: match[2] ?? '', line: this.line });
      this.text = nl === -1 ? '' : this.text.slice(nl + 1);
      if (nl === -1) break;
    }
    this.bodyLine = this.line + 1;
    return header;
  }

  /** The text from the body's first line on, chunk by chunk; the markers of the lines given are noted. */
  *body(): Generator<string> {
    let partial = '';
    for (;;) {
      const text = this.text;
      this.text = '';
      if (text !== '') {
        const lines = (partial + text).split('\n');
        partial = lines.pop() as string;
        for (const line of lines) this.scan(line);
        yield text;
      }
      if (!this.more()) break;
    }
    if (partial !== '') this.scan(partial);
  }

  /** One line of the body: a section marker is noted, any other directive refused. */
  private scan(text: string): void {
    const line = ++this.line;
    this.refuseNul(text, line);
    if (!text.includes('tenantify:')) return;
    const match = directivePrefix.exec(text.trim());
    if (!match) return;
    const name = match[1] ?? '';
    if (name === 'ranges') return this.ranges(match[2] ?? '', line);
    if (name !== 'precheck' && name !== 'verify') {
      throw new PlanError(`directive "tenantify:${name}" must come before the first statement`, {
        code: 'directive-misplaced',
        file: this.file,
        line,
      });
    }
    if (!match[2])
      throw new PlanError(`a ${name} section needs a name: -- tenantify:${name} <what must hold>`, {
        code: 'section-invalid',
        file: this.file,
        line,
      });
    this.markers.push({ section: name, name: match[2], line });
  }

  /** `-- tenantify:ranges <table> key=<column> [size=N]`: the precheck marker above it walks ranges. */
  private ranges(value: string, line: number): void {
    const marker = this.markers.at(-1);
    const refuse = (message: string, code = 'section-invalid'): PlanError =>
      new PlanError(message, { code, file: this.file, line, hint: rangesUsage });
    if (!marker) throw refuse('tenantify:ranges applies to the precheck marker right above it, and there is none');
    if (marker.section === 'verify')
      throw refuse(
        "a verify section runs inside the unit's transaction, where it must see the body's work on one snapshot: only a precheck walks ranges",
      );
    if (marker.ranges)
      throw refuse(`the precheck "${marker.name}" has its ranges already (line ${marker.rangesLine})`, 'directive-repeated');
    const parsed = batchSchema.safeParse(value);
    if (!parsed.success)
      throw refuse(
        `bad value "${value}" for tenantify:ranges: expected ${parsed.error.issues[0]?.message ?? 'a table and its key'}`,
        'directive-invalid',
      );
    marker.ranges = parsed.data;
    marker.rangesLine = line;
  }

  private refuseNul(text: string, line: number): void {
    if (text.includes('\0'))
      throw new PlanError('holds a NUL byte, which SQL text cannot hold', {
        file: this.file,
        line,
        code: 'nul-byte',
        hint: 'remove it; a file full of them is binary or saved as UTF-16: save it as UTF-8',
      });
  }
}

/**
 * The unit from its statements as they come: a section marker takes the first statement
 * after it, every other statement is the body; the body's rules are checked once all are
 * seen, each reporting its first offender. `keep`: the body's statements are kept (a unit in
 * memory), else only counted.
 */
function foldUnit(
  file: string,
  options: UnitOptions,
  all: Iterable<SplitStatement>,
  markers: readonly Marker[],
  keep: boolean,
): { parsed: ParsedSql; kept: Statement[]; count: number; inSection: Set<string> } {
  const fingerprint = new UnitFingerprint(options);
  const kept: Statement[] = [];
  const inSection = new Set<string>();
  const checks: { section: string; name: string; fingerprint: string }[] = [];
  const prechecks: Check[] = [];
  const verifies: Check[] = [];
  const writes = new Set<string>();
  const params = new Set<number>();
  let count = 0;
  let seen = 0;
  let taken = 0;
  const first: Partial<Record<'body' | 'second' | 'withParams' | 'control' | 'reset' | 'concurrent', SplitStatement>> = {};
  const noQuery = (marker: Marker): PlanError =>
    new PlanError(`the ${marker.section} section "${marker.name}" has no query: a section marker applies to the one statement after it`, {
      code: 'section-invalid',
      file,
      line: marker.line,
    });

  for (const s of all) {
    seen++;
    // The markers before this statement: the last takes it, any earlier one has no query.
    let marker: Marker | undefined;
    while (taken < markers.length && (markers[taken] as Marker).line < s.line) {
      if (marker) throw noQuery(marker);
      marker = markers[taken++];
    }
    if (marker) {
      if (!s.isQuery)
        throw new PlanError(`the ${marker.section} section "${marker.name}" must be exactly one SELECT that returns the violating rows`, {
          code: 'section-invalid',
          file,
          line: s.line,
        });
      const { ranges } = marker;
      if (ranges && (marker.rangesLine as number) > s.line)
        throw new PlanError(`the ranges line of the precheck "${marker.name}" comes after its query`, {
          code: 'section-invalid',
          file,
          line: marker.rangesLine,
          hint: rangesUsage,
        });
      if (ranges ? !s.params.includes(1) || !s.params.includes(2) : s.params.length > 0)
        throw new PlanError(
          ranges
            ? `the precheck "${marker.name}" walks ranges: its query takes each range's bounds, $1 (exclusive) and $2 (inclusive)`
            : `the ${marker.section} section "${marker.name}" uses $${s.params[0]}: only a precheck with a tenantify:ranges line takes parameters`,
          { code: 'section-invalid', file, line: s.line, hint: rangesUsage },
        );
      inSection.add(at(s));
      // A check's ranges are part of what runs: they count in the unit's fingerprint (a check without them hashes as before).
      const walk = ranges ? ` ranges ${ranges.table} key=${ranges.key} size=${ranges.size}` : '';
      checks.push({ section: marker.section, name: marker.name, fingerprint: `${s.fingerprint}${walk}` });
      const check: Check = { section: marker.section, name: marker.name, sql: s.sql, line: s.line, ...(ranges ? { ranges } : {}) };
      (marker.section === 'precheck' ? prechecks : verifies).push(check);
      continue;
    }
    count++;
    fingerprint.statement(s.fingerprint);
    if (keep) kept.push(bodyStatement(s));
    for (const table of s.writes) writes.add(table);
    for (const param of s.params) params.add(param);
    first.body ??= s;
    if (count === 2) first.second ??= s;
    if (s.params.length > 0) first.withParams ??= s;
    if (s.isTransactionControl) first.control ??= s;
    if (s.releasesRunLock) first.reset ??= s;
    if (s.mustRunAlone) first.concurrent ??= s;
  }
  if (seen === 0)
    throw new PlanError('the unit has no statement', { file, code: 'unit-empty', hint: "write the unit's SQL in it, or delete the file" });
  if (taken < markers.length) throw noQuery(markers[taken] as Marker);
  if (count === 0) {
    throw new PlanError("the unit's body is empty: every statement is in a precheck or verify section", {
      code: 'unit-body-empty',
      file,
      line: markers[0]?.line,
      hint: 'a section marker applies to the one statement after it; the statements in no section are the body',
    });
  }

  if (options.batch) {
    if (count !== 1) {
      throw new PlanError(`a batched unit has exactly one statement, run once per key range; this one has ${count}`, {
        code: 'batch-invalid',
        file,
        line: first.second?.line,
      });
    }
    if (!params.has(1) || !params.has(2)) {
      throw new PlanError('a batched statement must use $1 (exclusive lower bound of the key) and $2 (inclusive upper bound)', {
        code: 'batch-invalid',
        file,
        line: first.body?.line,
      });
    }
    if (!options.transaction)
      throw new PlanError('batch and transaction off cannot be combined: every batch is its own transaction', {
        code: 'batch-invalid',
        file,
      });
  } else if (first.withParams) {
    throw new PlanError('parameters ($1, $2) are only allowed in a batched unit (-- tenantify:batch <table> key=<column>)', {
      code: 'parameters-outside-batch',
      file,
      line: first.withParams.line,
    });
  }
  if (first.control) {
    throw new PlanError('BEGIN, COMMIT and ROLLBACK do not belong in a unit', {
      code: 'transaction-control',
      file,
      line: first.control.line,
      hint: 'tenantify runs each unit in its own transaction (or statement by statement with `-- tenantify:transaction off`)',
    });
  }
  if (first.reset) {
    throw new PlanError(
      "DISCARD ALL and pg_advisory_unlock_all() do not belong in a unit: they release the run's lock, so a second run could start beside this one",
      {
        code: 'releases-run-lock',
        file,
        line: first.reset.line,
        hint: 'DISCARD PLANS, TEMP or SEQUENCES reset one thing each; release an advisory lock of your own with pg_advisory_unlock(key)',
      },
    );
  }
  if (options.transaction && first.concurrent) {
    throw new PlanError(`this statement cannot run inside a transaction block`, {
      code: 'needs-transaction-off',
      file,
      line: first.concurrent.line,
      hint: 'add `-- tenantify:transaction off` at the top of the unit; its statements then run one by one',
    });
  }
  return {
    parsed: { options, fingerprint: fingerprint.digest(checks), statements: kept, prechecks, verifies, writes: [...writes] },
    kept,
    count,
    inSection,
  };
}
