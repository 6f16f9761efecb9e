/**
 * Statement splits of SQL text already parsed, kept between runs. Loading libpg-query's
 * WebAssembly and parsing a plan of hundreds of files is most of a short command's time,
 * and the split of a given text never changes: `plan`, `status` and `apply` on an unchanged
 * plan need not parse it again. Entries are keyed by the text's sha256, in one file per
 * build of tenantify (a rebuild starts afresh) under the user's cache directory
 * (`$XDG_CACHE_HOME/tenantify` or `~/.cache/tenantify`; `TENANTIFY_CACHE_DIR` moves it,
 * `TENANTIFY_CACHE_DIR=none` turns it off). It is only a cache: a file that cannot be read
 * or written is ignored, and a text it lacks is parsed.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Entries kept: the ones used by the last run first, then the most recent others. */
const maxEntries = 5000;
/** Files of other builds are removed once they are this old. */
const staleAfterMs = 24 * 60 * 60 * 1000;

export class SplitCache<T> {
  private readonly entries: Map<string, T>;
  private readonly used = new Set<string>();
  private dirty = false;

  private constructor(private readonly file: string | undefined, entries: Map<string, T>) {
    this.entries = entries;
  }

  /**
   * The cache of this build, or one that keeps nothing when the cache is turned off. `code`:
   * the module URLs of the code whose output is cached (with this one, they stand for the
   * build: in the bundle they are one file).
   */
  static open<T>(code: string[]): SplitCache<T> {
    const file = cacheFile(code);
    if (!file) return new SplitCache<T>(undefined, new Map());
    let entries = new Map<string, T>();
    try {
      entries = new Map(Object.entries(JSON.parse(readFileSync(file, 'utf8')) as Record<string, T>));
    } catch {
      // none yet, or unreadable: start empty
    }
    return new SplitCache<T>(file, entries);
  }

  static key(text: string): string {
    return createHash('sha256').update(text).digest('hex');
  }

  get(key: string): T | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) this.used.add(key);
    return value;
  }

  set(key: string, value: T): void {
    this.entries.set(key, value);
    this.used.add(key);
    this.dirty = true;
  }

  /** Writes the entries when this run added some: atomically, owner-only. */
  save(): void {
    if (!this.file || !this.dirty) return;
    const kept: Record<string, T> = {};
    let count = 0;
    for (const key of [...this.used, ...this.entries.keys()]) {
      if (count >= maxEntries) break;
      if (key in kept) continue;
      kept[key] = this.entries.get(key) as T;
      count++;
    }
    const directory = join(this.file, '..');
    const temporary = `${this.file}.${process.pid}.tmp`;
    try {
      mkdirSync(directory, { recursive: true, mode: 0o700 });
      writeFileSync(temporary, JSON.stringify(kept), { mode: 0o600 });
      renameSync(temporary, this.file);
      this.dirty = false;
      removeStale(directory, this.file);
    } catch {
      rmSync(temporary, { force: true });
    }
  }
}

function cacheFile(code: string[]): string | undefined {
  const configured = process.env['TENANTIFY_CACHE_DIR'];
  if (configured === 'none') return undefined;
  const directory = configured || join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'tenantify');
  try {
    // The code's files stand for the build: rebuilding or editing tenantify changes their size or time.
    const hash = createHash('sha256');
    for (const url of new Set([import.meta.url, ...code])) {
      const path = fileURLToPath(url);
      const { size, mtimeMs } = statSync(path);
      hash.update(`${path}\n${size}\n${mtimeMs}\n`);
    }
    const build = hash.digest('hex').slice(0, 16);
    return join(directory, `splits-${build}.json`);
  } catch {
    return undefined;
  }
}

function removeStale(directory: string, current: string): void {
  const now = Date.now();
  for (const name of readdirSync(directory)) {
    const path = join(directory, name);
    if (path === current || !/^splits-[0-9a-f]+\.json(\.\d+\.tmp)?$/.test(name)) continue;
    try {
      if (now - statSync(path).mtimeMs > staleAfterMs) rmSync(path, { force: true });
    } catch {
      // another run removed it
    }
  }
}
