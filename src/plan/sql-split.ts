/**
 * SQL text split into statements by PostgreSQL's own parser (libpg-query), each with its
 * line and column and what it does (sql-tree.ts). A split depends on the text alone: one
 * already made comes from the split cache the caller passes (split-cache.ts), and only a
 * text it lacks needs the parser.
 */
import { createHash } from 'node:crypto';
import { PlanError } from '../errors.js';
import { statementFingerprint } from './fingerprint.js';
import { SplitCache } from './split-cache.js';
import { analyse, analysisCode, type Analysis } from './sql-tree.js';
import type { Statement } from './types.js';
import { runtimeImport } from '../runtime-import.js';

export interface RawStmt {
  stmt: Record<string, unknown>;
  stmt_location?: number;
  stmt_len?: number;
}

export type ParseSync = (sql: string) => { stmts?: RawStmt[] };
let parser: ParseSync | undefined;

/**
 * libpg-query is WebAssembly: loaded once, on the first plan that has SQL units. (The CLI's
 * launcher has V8 compile it with its baseline compiler only: see src/cli/code-cache.ts.)
 */
export async function loadSqlParser(): Promise<void> {
  await sqlParser();
}

/** The parser, loaded on the first call (`loadSqlParser`). */
export async function sqlParser(): Promise<ParseSync> {
  if (parser) return parser;
  const mod = await runtimeImport('libpg-query', () => import('libpg-query'));
  await mod.loadModule();
  parser = mod.parseSync as ParseSync;
  return parser;
}

/** A statement as split, with what its parse tree says it does (sql-tree.ts). */
export interface SplitStatement extends Omit<Statement, 'createsIndex'>, Analysis {
  fingerprint: string;
}

/** The parser is needed for a text the split cache does not hold: load it (`loadSqlParser`) and try again. */
export class SqlParserNeeded extends Error {
  constructor() {
    super('loadSqlParser() must run before parsing SQL that is not in the split cache');
  }
}

/** The splits of SQL text kept between runs: opened and saved by the plan's loader, passed to every unit's parse. */
export type Splits = SplitCache<SplitStatement[]>;

/** The split cache of this build: its entries are the output of this module and of the parse-tree analysis. */
export function openSplits(): Splits {
  return SplitCache.open<SplitStatement[]>([import.meta.url, analysisCode]);
}

/** Texts up to this size (a few thousand statements) keep their split in the cache. */
const largestCachedText = 1024 * 1024;

/** Splits text that starts at `firstLine` of the file into statements, with their lines: from `splits` when it holds the text. */
export function splitStatements(file: string, text: string, firstLine: number, splits: Splits | undefined): SplitStatement[] {
  const key = SplitCache.key(text);
  let split = splits?.get(key);
  if (split === undefined) {
    split = parseStatements(file, text, firstLine);
    // A large text's split would cost every later command more to read back than it saves.
    if (text.length <= largestCachedText) splits?.set(key, split);
  }
  return firstLine === 1 ? split : split.map((s) => ({ ...s, line: s.line + firstLine - 1 }));
}

/**
 * Text is parsed a piece at a time, each piece cut after a `;` that ends a line: the parser's
 * tree of a whole file of generated INSERTs (20 MB) would take gigabytes, a piece's a few
 * megabytes. A cut that falls inside a statement (a `;` in a string, a dollar-quoted body, a
 * BEGIN ATOMIC body) leaves a piece that fails in its last statement: the piece is cut again
 * before the error, until it holds whole statements. An error with no earlier cut is the
 * text's own, found by parsing the rest of the text (the parser stops at the first error).
 */
const pieceChars = 256 * 1024;

/** A `;` that ends a line: where a piece may be cut. */
const cut = /;[ \t]*\r?\n/g;

/** The statements of `text`, their lines counted from its first line (a parse error's from `firstLine` of the file). */
function parseStatements(file: string, text: string, firstLine: number): SplitStatement[] {
  const result: SplitStatement[] = [];
  for (const statement of statementsOfText(file, [text], firstLine, 1)) result.push(statement);
  return result;
}

/**
 * The statements of text that starts at `firstLine` of the file and arrives in chunks (a
 * unit file read a chunk at a time), with their lines in the file: each is yielded once the
 * piece that holds it is parsed, so only a piece and the chunk after it are held, whatever
 * the text's size.
 */
export function streamStatements(file: string, chunks: Iterable<string>, firstLine: number): Generator<SplitStatement> {
  return statementsOfText(file, chunks, firstLine, firstLine);
}

/** The statements of text in chunks: a parse error's line counted from `firstLine`, the statements' from `statementLine`. */
function* statementsOfText(file: string, chunks: Iterable<string>, firstLine: number, statementLine: number): Generator<SplitStatement> {
  if (!parser) throw new SqlParserNeeded();
  const source = chunks[Symbol.iterator]();
  let buffer = '';
  let ended = false;
  const more = (): void => {
    const next = source.next();
    if (next.done) ended = true;
    else buffer += next.value;
  };
  // The first line of the buffer in the text (statements' lines are the text's; an error's, the file's).
  let line = 1;
  for (;;) {
    // A piece: the buffer up to the first cut past pieceChars, else (at the text's end) all of it.
    let end = buffer.length > pieceChars ? cutAfter(buffer, pieceChars) : undefined;
    while (end === undefined && !ended) {
      more();
      if (buffer.length > pieceChars) end = cutAfter(buffer, pieceChars);
    }
    end ??= buffer.length;
    if (end === 0) return;
    let parsed = parseText(buffer.slice(0, end));
    while ('error' in parsed && (end < buffer.length || !ended)) {
      const earlier = cutBefore(buffer, 0, Math.min(parsed.error.offset, end - 1));
      if (earlier === undefined) {
        // No earlier cut: the error is the text's own, or a statement longer than the piece: all the rest decides.
        while (!ended) more();
        end = buffer.length;
      } else end = earlier;
      parsed = parseText(buffer.slice(0, end));
    }
    const piece = buffer.slice(0, end);
    if ('error' in parsed) {
      const at = lineAndColumn(piece, parsed.error.offset);
      throw new PlanError(`does not parse: ${parsed.error.message}`, {
        code: 'sql-syntax',
        file,
        line: firstLine + line - 1 + at.line - 1,
      });
    }
    yield* statementsOf(piece, parsed.stmts, statementLine + line - 1);
    line += newlines(piece);
    buffer = buffer.slice(end);
  }
}

/** The end of the first cut at or after `from`; when there is none, undefined. */
function cutAfter(text: string, from: number): number | undefined {
  if (from >= text.length) return undefined;
  cut.lastIndex = from;
  const found = cut.exec(text);
  return found ? found.index + found[0].length : undefined;
}

/** The end of the last cut after `start` that ends at or before `before`; undefined when there is none. */
function cutBefore(text: string, start: number, before: number): number | undefined {
  let last: number | undefined;
  cut.lastIndex = start;
  for (let found = cut.exec(text); found && found.index + found[0].length <= before; found = cut.exec(text))
    last = found.index + found[0].length;
  return last;
}

function newlines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** The parser's tree of `text`, or its error with the character offset it points at. */
function parseText(text: string): { stmts: RawStmt[] } | { error: { offset: number; message: string } } {
  try {
    return { stmts: (parser as ParseSync)(text).stmts ?? [] };
  } catch (error) {
    const details = (error as { sqlDetails?: { cursorPosition?: number; message?: string } }).sqlDetails;
    return {
      error: { offset: codePointToCharOffset(text, details?.cursorPosition ?? 0), message: details?.message ?? (error as Error).message },
    };
  }
}

/** The statements of one piece of text that starts at `firstLine` of the text, from its tree. */
function statementsOf(text: string, stmts: RawStmt[], firstLine: number): SplitStatement[] {
  // libpg-query gives byte offsets; one cursor walks the text once, in step with them.
  const cursor = new TextCursor(text);
  const result: SplitStatement[] = [];
  for (const raw of stmts) {
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
      line: firstLine + at.line - 1,
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
        if (chunk.startsWith('/*', i)) {
          depth++;
          i += 2;
        } else if (chunk.startsWith('*/', i)) {
          depth--;
          i += 2;
        } else i++;
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
