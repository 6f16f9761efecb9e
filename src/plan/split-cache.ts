/**
 * Statement splits of SQL text already parsed, kept between runs. Loading libpg-query's
 * WebAssembly and parsing a plan of hundreds of files is most of a short command's time,
 * and the split of a given text never changes: `plan`, `status` and `apply` on an unchanged
 * plan need not parse it again. Entries are keyed by the text's sha256, in one file per
 * build of tenantify (a rebuild starts afresh) under the cache directory (cache-dir.ts). It
 * is only a cache: a file that cannot be read or written is ignored, and a text it lacks is
 * parsed. The file is read on the first look-up, so a plan without SQL never reads it.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDirectory, removeStale, writeCacheFile } from '../cache-dir.js';

/** Entries kept: the ones used by the last run first, then the most recent others. */
const maxEntries = 5000;
/** Files of other builds are removed once they are this old. */
const staleAfterMs = 24 * 60 * 60 * 1000;

export class SplitCache<T> {
  private contents: { file: string | undefined; entries: Map<string, T> } | undefined;
  private readonly used = new Set<string>();
  private dirty = false;

  private constructor(private readonly code: string[]) {}

  /**
   * The cache of this build, or one that keeps nothing when the cache is turned off. `code`:
   * the module URLs of the code whose output is cached (with this one, they stand for the
   * build: in the bundle they are one file).
   */
  static open<T>(code: string[]): SplitCache<T> {
    return new SplitCache<T>(code);
  }

  static key(text: string): string {
    return createHash('sha256').update(text).digest('hex');
  }

  get(key: string): T | undefined {
    const value = this.read().entries.get(key);
    if (value !== undefined) this.used.add(key);
    return value;
  }

  set(key: string, value: T): void {
    this.read().entries.set(key, value);
    this.used.add(key);
    this.dirty = true;
  }

  /** Writes the entries when this run added some: atomically, owner-only. */
  save(): void {
    if (!this.dirty) return;
    const { file, entries } = this.read();
    if (!file) return;
    const kept: Record<string, T> = {};
    let count = 0;
    for (const key of [...this.used, ...entries.keys()]) {
      if (count >= maxEntries) break;
      if (key in kept) continue;
      kept[key] = entries.get(key) as T;
      count++;
    }
    if (!writeCacheFile(file, JSON.stringify(kept))) return;
    this.dirty = false;
    removeStale(join(file, '..'), file, /^splits-[0-9a-f]+\.json(\.\d+\.tmp)?$/, staleAfterMs);
  }

  /** The file of this build (none when the cache is off) and its entries, read on the first look-up. */
  private read(): { file: string | undefined; entries: Map<string, T> } {
    if (this.contents) return this.contents;
    const file = cacheFile(this.code);
    let entries = new Map<string, T>();
    try {
      if (file) entries = new Map(Object.entries(JSON.parse(readFileSync(file, 'utf8')) as Record<string, T>));
    } catch {
      // none yet, or unreadable: start empty
    }
    this.contents = { file, entries };
    return this.contents;
  }
}

function cacheFile(code: string[]): string | undefined {
  const directory = cacheDirectory();
  if (!directory) return undefined;
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
