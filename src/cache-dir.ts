/**
 * The one directory tenantify keeps caches in, and how a file gets there:
 * `$XDG_CACHE_HOME/tenantify` or `~/.cache/tenantify`; `TENANTIFY_CACHE_DIR` moves it,
 * `TENANTIFY_CACHE_DIR=none` turns caching off. What it holds is only a cache: a file that
 * cannot be read or written is ignored, and the work it would have saved is done again.
 */
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The cache directory, or undefined when caching is turned off. */
export function cacheDirectory(): string | undefined {
  const configured = process.env['TENANTIFY_CACHE_DIR'];
  if (configured === 'none') return undefined;
  return configured || join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'tenantify');
}

/**
 * Writes a file of the cache directory atomically (a temporary file renamed over it, so a
 * reader never sees half of it), owner-only, creating the directory (owner-only) when
 * needed. False when it could not: only a cache.
 */
export function writeCacheFile(file: string, data: string | Uint8Array): boolean {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
    writeFileSync(temporary, data, { mode: 0o600 });
    renameSync(temporary, file);
    return true;
  } catch {
    try {
      rmSync(temporary, { force: true });
    } catch {
      // no directory to hold it either (TENANTIFY_CACHE_DIR names a file)
    }
    return false;
  }
}

/**
 * Removes the files of `directory` named like `pattern` (other builds' caches, and the
 * temporary files of writes that died) once they are `maxAgeMs` old, except `current`.
 */
export function removeStale(directory: string, current: string, pattern: RegExp, maxAgeMs: number): void {
  const now = Date.now();
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(directory, name);
    if (path === current || !pattern.test(name)) continue;
    try {
      if (now - statSync(path).mtimeMs > maxAgeMs) rmSync(path, { force: true });
    } catch {
      // another run removed it
    }
  }
}
