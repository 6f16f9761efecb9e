/**
 * A fleet's targets: the databases one plan goes to. Read from a targets file (one target a
 * line: `name URL`, or a bare URL named by its database; `#` comments) or from the rows of
 * `--targets-query`. Pure: the caller reads the file or runs the query.
 */
import { UsageError } from '../errors.js';
import { parseDatabaseUrl } from '../db/libpq.js';

export interface Target {
  /** What the fleet calls it everywhere (never its URL: the URL may carry a password). */
  name: string;
  /** Never print it: it may carry a password. */
  url: string;
  /** Where it was read from, for messages: `targets.txt:3` or `--targets-query row 3`. */
  source: string;
}

/** A name: letters, digits and `_ . -`, not a URL (the one place a typo would print a password). */
const namePattern = /^[\p{L}\p{N}_.-]+$/u;

const fileHint =
  'one target a line: `name postgres://user@host/db`, or a bare `postgres://user@host/db` (the database names it); `#` starts a comment';

/** The targets of a targets file's text; a bad line is a usage error naming the file and line. */
export function parseTargets(text: string, file: string): Target[] {
  const targets: Target[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const source = `${file}:${i + 1}`;
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (line === '') return;
    const words = line.split(/\s+/);
    if (words.length > 2) throw invalid(source, `${words.length} words where a target takes one or two (name and URL)`);
    const [first = '', second] = words;
    const url = second ?? first;
    targets.push(target(second === undefined ? undefined : first, url, source));
  });
  return checkTargets(targets, file);
}

/** The targets of `--targets-query`'s rows: columns `name` and `url` (a null or empty name: the database names it). */
export function targetsFromRows(rows: Record<string, unknown>[], query = '--targets-query'): Target[] {
  const first = rows[0];
  if (first && !('url' in first)) {
    throw new UsageError(`${query} returned no \`url\` column (it returned ${Object.keys(first).join(', ') || 'no columns'})`, {
      code: 'targets-invalid',
      hint: 'select a `name` and a `url` column: SELECT name, url FROM fleet ORDER BY name',
    });
  }
  const targets = rows.map((row, i) => {
    const name = row['name'] === null || row['name'] === undefined || row['name'] === '' ? undefined : String(row['name']);
    return target(name, String(row['url'] ?? ''), `${query} row ${i + 1}`);
  });
  return checkTargets(targets, query);
}

function target(name: string | undefined, url: string, source: string): Target {
  if (name !== undefined && /:\/\//.test(name)) throw invalid(source, 'two URLs on one line: a target is `name URL`');
  try {
    const parts = parseDatabaseUrl(url);
    const named = name ?? parts.database;
    if (named === undefined)
      throw invalid(source, 'the URL names no database, so nothing names the target', 'name it: `name postgres://user@host/db`');
    if (!namePattern.test(named)) throw invalid(source, `the name "${named}" is not letters, digits, _ . or -`);
    return { name: named, url, source };
  } catch (error) {
    // parseDatabaseUrl's message says what is wrong with the URL (redacted); the line says where.
    if (error instanceof UsageError && error.code !== 'targets-invalid') throw invalid(source, error.message);
    throw error;
  }
}

function checkTargets(targets: Target[], where: string): Target[] {
  if (targets.length === 0) throw new UsageError(`${where} names no target`, { code: 'targets-empty', hint: fileHint });
  const seen = new Map<string, Target>();
  for (const t of targets) {
    const before = seen.get(t.name);
    if (before)
      throw invalid(
        t.source,
        `the name "${t.name}" is taken by ${before.source}`,
        'each target needs its own name: put one before the URL',
      );
    seen.set(t.name, t);
  }
  return targets;
}

function invalid(source: string, what: string, hint = fileHint): UsageError {
  return new UsageError(`${source}: ${what}`, { code: 'targets-invalid', hint });
}
