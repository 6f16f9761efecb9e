/**
 * A SQL unit: header directives, then statements split by PostgreSQL's own parser
 * (libpg-query): a `precheck` or `verify` marker takes the one SELECT after it, and the
 * statements in no section are the body, wherever they stand.
 */
import { createHash } from 'node:crypto';
import { PlanError } from '../errors.js';
import { directivePrefix, parseDirectives, sectionNames, type DirectiveDefaults, type DirectiveLine } from './directives.js';
import { statementFingerprint, unitFingerprint } from './fingerprint.js';
import type { Check, Statement, UnitOptions } from './types.js';
import { SplitCache } from './split-cache.js';
import { runtimeImport } from '../runtime-import.js';

export interface ParsedSql {
  options: UnitOptions;
  /** What the unit runs, without comments, whitespace or layout (fingerprint.ts). */
  fingerprint: string;
  statements: Statement[];
  prechecks: Check[];
  verifies: Check[];
  writes: string[];
}

interface RawStmt {
  stmt: Record<string, unknown>;
  stmt_location?: number;
  stmt_len?: number;
}

type ParseSync = (sql: string) => { stmts?: RawStmt[] };
let parser: ParseSync | undefined;

/**
 * libpg-query is WebAssembly: loaded once, on the first plan that has SQL units. (The CLI's
 * launcher has V8 compile it with its baseline compiler only: see bin/tenantify.)
 */
export async function loadSqlParser(): Promise<void> {
  if (parser) return;
  const mod = await runtimeImport('libpg-query', () => import('libpg-query'));
  await mod.loadModule();
  parser = mod.parseSync as ParseSync;
}

export function parseSqlUnit(file: string, text: string, defaults: DirectiveDefaults): ParsedSql {
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
      if (!match[2]) throw new PlanError(`a ${name} section needs a name: -- tenantify:${name} <what must hold>`, { file, line: i + 1 });
      markers.push({ section: name, name: match[2], line: i + 1 });
    } else {
      throw new PlanError(`directive "tenantify:${name}" must come before the first statement`, { file, line: i + 1 });
    }
  }

  const all = splitStatements(file, lines.slice(bodyStart).join('\n'), bodyStart + 1);
  if (all.length === 0) throw new PlanError('the unit has no statement', { file });
  const inSection = new Set<SplitStatement>();
  const checks: { section: string; name: string; fingerprint: string }[] = [];
  const prechecks: Check[] = [];
  const verifies: Check[] = [];
  markers.forEach((marker, index) => {
    const next = markers[index + 1];
    const first = all.find((s) => s.line > marker.line);
    if (!first || (next && first.line > next.line)) throw new PlanError(`the ${marker.section} section "${marker.name}" has no query: a section marker applies to the one statement after it`, { file, line: marker.line });
    if (!first.isQuery) {
      throw new PlanError(`the ${marker.section} section "${marker.name}" must be exactly one SELECT that returns the violating rows`, { file, line: first.line });
    }
    inSection.add(first);
    checks.push({ section: marker.section, name: marker.name, fingerprint: first.fingerprint });
    const check: Check = { section: marker.section, name: marker.name, sql: first.sql, line: first.line };
    (marker.section === 'precheck' ? prechecks : verifies).push(check);
  });
  const statements = all.filter((s) => !inSection.has(s));
  if (statements.length === 0) {
    throw new PlanError('the unit\'s body is empty: every statement is in a precheck or verify section', { file, line: markers[0]?.line, hint: 'a section marker applies to the one statement after it; the statements in no section are the body' });
  }

  const params = statements.flatMap((s) => s.params);
  if (options.batch) {
    if (statements.length !== 1) {
      throw new PlanError(`a batched unit has exactly one statement, run once per key range; this one has ${statements.length}`, { file, line: statements[1]?.line });
    }
    if (!params.includes(1) || !params.includes(2)) {
      throw new PlanError('a batched statement must use $1 (exclusive lower bound of the key) and $2 (inclusive upper bound)', { file, line: statements[0]?.line });
    }
    if (!options.transaction) throw new PlanError('batch and transaction off cannot be combined: every batch is its own transaction', { file });
  } else if (params.length > 0) {
    throw new PlanError('parameters ($1, $2) are only allowed in a batched unit (-- tenantify:batch <table> key=<column>)', { file, line: statements.find((s) => s.params.length > 0)?.line });
  }
  const control = statements.find((s) => s.isTransactionControl);
  if (control) {
    throw new PlanError('BEGIN, COMMIT and ROLLBACK do not belong in a unit', { file, line: control.line, hint: 'tenantify runs each unit in its own transaction (or statement by statement with `-- tenantify:transaction off`)' });
  }
  const reset = statements.find((s) => s.releasesRunLock);
  if (reset) {
    throw new PlanError(
      'DISCARD ALL and pg_advisory_unlock_all() do not belong in a unit: they release the run\'s lock, so a second run could start beside this one',
      { file, line: reset.line, hint: 'DISCARD PLANS, TEMP or SEQUENCES reset one thing each; release an advisory lock of your own with pg_advisory_unlock(key)' },
    );
  }
  if (options.transaction) {
    const concurrent = statements.find((s) => s.mustRunAlone);
    if (concurrent) {
      throw new PlanError(`this statement cannot run inside a transaction block`, { file, line: concurrent.line, hint: 'add `-- tenantify:transaction off` at the top of the unit; its statements then run one by one' });
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

interface SplitStatement extends Statement {
  fingerprint: string;
  params: number[];
  writes: string[];
  isQuery: boolean;
  mustRunAlone: boolean;
  isTransactionControl: boolean;
  releasesRunLock: boolean;
}

/** The parser is needed for a text the split cache does not hold: load it (`loadSqlParser`) and try again. */
export class SqlParserNeeded extends Error {
  constructor() {
    super('loadSqlParser() must run before parsing SQL that is not in the split cache');
  }
}

let splits: SplitCache<SplitStatement[]> | undefined;

/** Writes the splits parsed by this process to the cache (see split-cache.ts). */
export function saveSplitCache(): void {
  splits?.save();
}

/** Splits text that starts at `firstLine` of the file into statements, with their lines. */
export function splitStatements(file: string, text: string, firstLine: number): SplitStatement[] {
  splits ??= SplitCache.open<SplitStatement[]>([import.meta.url]);
  const key = SplitCache.key(text);
  let split = splits.get(key);
  if (split === undefined) {
    split = parseStatements(file, text, firstLine);
    splits.set(key, split);
  }
  return firstLine === 1 ? split : split.map((s) => ({ ...s, line: s.line + firstLine - 1 }));
}

/** The statements of `text`, their lines counted from its first line (a parse error's from `firstLine` of the file). */
function parseStatements(file: string, text: string, firstLine: number): SplitStatement[] {
  if (!parser) throw new SqlParserNeeded();
  let tree: { stmts?: RawStmt[] };
  try {
    tree = parser(text);
  } catch (error) {
    const details = (error as { sqlDetails?: { cursorPosition?: number; message?: string } }).sqlDetails;
    const position = details?.cursorPosition ?? 0;
    const at = lineAndColumn(text, codePointToCharOffset(text, position));
    throw new PlanError(`does not parse: ${details?.message ?? (error as Error).message}`, { file, line: firstLine + at.line - 1 });
  }
  // libpg-query gives byte offsets; one cursor walks the text once, in step with them.
  const cursor = new TextCursor(text);
  const result: SplitStatement[] = [];
  for (const raw of tree.stmts ?? []) {
    const startByte = raw.stmt_location ?? 0;
    const startChar = cursor.charAt(startByte);
    const endChar = raw.stmt_len ? cursor.peekCharAt(startByte + raw.stmt_len) : text.length;
    const chunk = text.slice(startChar, endChar);
    const lead = leadingTrivia(chunk);
    const sql = chunk.slice(lead).trimEnd();
    const at = cursor.lineAndColumnOf(startChar + lead);
    const analysis = analyse(raw.stmt);
    result.push({
      sql,
      line: at.line,
      column: at.column,
      hash: createHash('sha256').update(sql).digest('hex'),
      fingerprint: statementFingerprint(raw.stmt),
      createsIndex: analysis.createsIndex,
      params: analysis.params,
      writes: analysis.writes,
      isQuery: analysis.isQuery,
      mustRunAlone: analysis.mustRunAlone,
      isTransactionControl: analysis.isTransactionControl,
      releasesRunLock: analysis.releasesRunLock,
    });
  }
  return result;
}

/**
 * Byte offsets (UTF-8) to character offsets, and character offsets to lines and columns,
 * for offsets that only grow: each call goes on from where the last one stopped, so a
 * text of n statements is walked once, not n times.
 */
class TextCursor {
  private char = 0;
  private byte = 0;
  private lineChar = 0;
  private line = 1;
  private lineStart = 0;

  constructor(private readonly text: string) {}

  /** The character offset of a byte offset at or after the last one asked. */
  charAt(byteOffset: number): number {
    const { text } = this;
    while (this.byte < byteOffset && this.char < text.length) {
      const code = text.charCodeAt(this.char);
      if (code >= 0xd800 && code <= 0xdbff && this.char + 1 < text.length) {
        this.byte += 4;
        this.char += 2;
      } else {
        this.byte += code < 0x80 ? 1 : code < 0x800 ? 2 : 3;
        this.char += 1;
      }
    }
    return this.char;
  }

  /** The character offset of a byte offset, without moving the cursor (a statement's end: the next starts at or before it). */
  peekCharAt(byteOffset: number): number {
    const [char, byte] = [this.char, this.byte];
    const found = this.charAt(byteOffset);
    [this.char, this.byte] = [char, byte];
    return found;
  }

  /** 1-based line and column of a character offset at or after the last one asked. */
  lineAndColumnOf(charOffset: number): { line: number; column: number } {
    const { text } = this;
    for (let nl = text.indexOf('\n', this.lineChar); nl !== -1 && nl < charOffset; nl = text.indexOf('\n', nl + 1)) {
      this.line++;
      this.lineStart = nl + 1;
    }
    this.lineChar = Math.max(this.lineChar, charOffset);
    return { line: this.line, column: charOffset - this.lineStart + 1 };
  }
}

/** Length of the whitespace and comments before a statement's first token. */
function leadingTrivia(chunk: string): number {
  let i = 0;
  for (;;) {
    while (i < chunk.length && /\s/.test(chunk[i] as string)) i++;
    if (chunk.startsWith('--', i)) {
      const nl = chunk.indexOf('\n', i);
      i = nl === -1 ? chunk.length : nl + 1;
    } else if (chunk.startsWith('/*', i)) {
      let depth = 0;
      do {
        if (chunk.startsWith('/*', i)) { depth++; i += 2; }
        else if (chunk.startsWith('*/', i)) { depth--; i += 2; }
        else i++;
      } while (depth > 0 && i < chunk.length);
    } else {
      return i;
    }
  }
}

/** The parser's error position counts code points (as PostgreSQL counts characters); JavaScript counts UTF-16 units. */
function codePointToCharOffset(text: string, codePoints: number): number {
  let char = 0;
  for (let n = 0; n < codePoints && char < text.length; n++) {
    const code = text.charCodeAt(char);
    char += code >= 0xd800 && code <= 0xdbff ? 2 : 1;
  }
  return char;
}

function lineAndColumn(text: string, charOffset: number): { line: number; column: number } {
  const before = text.slice(0, charOffset);
  const line = before.split('\n').length;
  const column = charOffset - (before.lastIndexOf('\n') + 1) + 1;
  return { line, column };
}

interface Analysis {
  params: number[];
  writes: string[];
  isQuery: boolean;
  mustRunAlone: boolean;
  isTransactionControl: boolean;
  /** DISCARD ALL, or a call of pg_advisory_unlock_all(): the session's advisory locks go. */
  releasesRunLock: boolean;
  createsIndex: { schema: string | undefined; name: string } | undefined;
}

interface RangeVar {
  schemaname?: string;
  relname: string;
}

const qualified = (r: RangeVar): string => (r.schemaname ? `${r.schemaname}.${r.relname}` : r.relname);

/**
 * What the parse tree tells: parameters used, the existing tables whose rows or columns a
 * statement changes or loses (what a rollback file cannot give back, so what the snapshot
 * holds), and statements that cannot run in a transaction.
 */
function analyse(stmt: Record<string, unknown>): Analysis {
  const [type] = Object.keys(stmt);
  const node = (type ? stmt[type] : {}) as Record<string, unknown>;
  const params = new Set<number>();
  const writes: string[] = [];
  let releasesRunLock = type === 'DiscardStmt' && (node as { target?: string }).target === 'DISCARD_ALL';
  walk(stmt, (key, value) => {
    if (key === 'ParamRef') params.add(Number((value as { number?: number }).number ?? 0));
    if (key === 'FuncCall') {
      const name = (value as { funcname?: { String?: { sval?: string } }[] }).funcname?.at(-1)?.String?.sval;
      if (name?.toLowerCase() === 'pg_advisory_unlock_all') releasesRunLock = true;
    }
    if (changesExistingRows(key, value) || changesExistingColumns(key, value)) {
      const relation = (value as { relation?: RangeVar }).relation;
      if (relation) writes.push(qualified(relation));
    }
    if (key === 'TruncateStmt') {
      for (const r of (value as { relations?: { RangeVar: RangeVar }[] }).relations ?? []) writes.push(qualified(r.RangeVar));
    }
    if (key === 'DropStmt' && (value as { removeType?: string }).removeType === 'OBJECT_TABLE') {
      for (const name of (value as { objects?: { List?: { items?: { String?: { sval?: string } }[] } }[] }).objects ?? []) {
        writes.push((name.List?.items ?? []).map((part) => part.String?.sval ?? '').join('.'));
      }
    }
  });
  const index = type === 'IndexStmt' ? (node as { idxname?: string; concurrent?: boolean; relation?: RangeVar }) : undefined;
  const mustRunAlone =
    Boolean(index?.concurrent) ||
    (type === 'DropStmt' && Boolean((node as { concurrent?: boolean }).concurrent)) ||
    (type === 'ReindexStmt' && JSON.stringify(node).includes('"concurrently"')) ||
    type === 'VacuumStmt' ||
    type === 'CreatedbStmt' ||
    type === 'DropdbStmt';
  return {
    params: [...params],
    writes,
    isQuery: type === 'SelectStmt',
    mustRunAlone,
    isTransactionControl: type === 'TransactionStmt',
    releasesRunLock,
    createsIndex: index?.idxname ? { schema: index.relation?.schemaname, name: index.idxname } : undefined,
  };
}

/**
 * UPDATE, DELETE, MERGE and an upsert change rows that exist. A plain INSERT only adds rows,
 * which a rollback file deletes again: no snapshot for it.
 */
function changesExistingRows(key: string, value: unknown): boolean {
  if (key === 'UpdateStmt' || key === 'DeleteStmt' || key === 'MergeStmt') return true;
  return key === 'InsertStmt' && (value as { onConflictClause?: { action?: string } }).onConflictClause?.action === 'ONCONFLICT_UPDATE';
}

/**
 * An ALTER TABLE that drops a column or changes its type loses or rewrites data. Adding a
 * column, a constraint, a default, NOT NULL or row level security changes only the catalog,
 * and the rollback file reverts it: a pg_dump of the whole table would buy nothing.
 */
function changesExistingColumns(key: string, value: unknown): boolean {
  if (key !== 'AlterTableStmt') return false;
  const cmds = (value as { cmds?: { AlterTableCmd?: { subtype?: string } }[] }).cmds ?? [];
  return cmds.some((c) => c.AlterTableCmd?.subtype === 'AT_DropColumn' || c.AlterTableCmd?.subtype === 'AT_AlterColumnType');
}

function walk(value: unknown, visit: (key: string, value: unknown) => void): void {
  if (Array.isArray(value)) {
    for (const item of value) walk(item, visit);
  } else if (value && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      visit(key, child);
      walk(child, visit);
    }
  }
}
