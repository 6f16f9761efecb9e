/**
 * Runs the CLI's bundle (dist/tenantify.cjs) for bin/tenantify, with V8's code cache.
 * Built on its own into dist/code-cache.cjs (CommonJS, a few kB: the launcher requires it
 * before the bundle); never imported by the library.
 *
 * Compiling the bundle's 1 MB is a good part of a short command's time, and V8 can keep
 * the code it compiled for an unchanged bundle. What that buys, against the same bundle
 * required without a cache (150 alternated rounds on a loaded 2-core machine; medians of
 * per-round ratios, bootstrap 95% intervals): `apply --help`, the whole CLI loaded, 1.05x
 * less CPU time (1.03-1.07) and 1.10x less wall time (1.02-1.17), 1.84x `node -e 0`
 * instead of 2.01x; `plan` of the reference plan (15 units, warm split cache) 1.06x less CPU
 * time (1.04-1.07), its wall time within noise. `--help` and `--version` never load the
 * bundle.
 *
 * The cache is written once, when a run finds none (or one V8 turns down: another Node.js,
 * other flags), after that run, so it holds the functions the run compiled. It lives in the
 * cache directory (cache-dir.ts) as `code-<build>.bin`; V8 checks that it matches the
 * source and itself, and an unreadable one is ignored.
 */
import { isAscii } from 'node:buffer';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';
import { cacheDirectory, removeStale, writeCacheFile } from '../cache-dir.js';

/** Files of other builds go once they are this old. */
const staleAfterMs = 24 * 60 * 60 * 1000;

export function runBundle(bundle: string): void {
  // The build writes ASCII (no comments, escaped strings): read as Latin-1, it decodes several times faster.
  const bytes = readFileSync(bundle);
  const text = isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
  // libpg-query's WebAssembly compiled by V8's baseline compiler only: the optimising tier
  // compiles the whole parser again in the background, and a short command then waits for that
  // work, about 200 ms, to parse a few hundred small files that baseline code parses just as
  // fast. A process-wide flag: set by the command line here, before the bundle is compiled (so
  // V8's code cache is made and read under the same flags), never by the library, so an
  // application that embeds tenantify's API keeps its own V8 settings.
  setFlagsFromString('--liftoff-only');
  const cacheFile = codeCacheFile(bundle, text);
  let cachedData: Buffer | undefined;
  try {
    if (cacheFile) cachedData = readFileSync(cacheFile);
  } catch {
    // none yet
  }
  // A script compiled from a code cache has no import() in Node.js 20: the bundle borrows
  // this module's (see src/runtime-import.ts).
  (globalThis as Record<symbol, unknown>)[Symbol.for('tenantify.import')] = (specifier: string) => import(specifier);
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${text}\n})`, { filename: bundle, cachedData });
  if (cacheFile && (!cachedData || script.cachedDataRejected)) process.once('exit', () => save(cacheFile, script.createCachedData()));
  const module = { exports: {} };
  (script.runInThisContext() as (...args: unknown[]) => void)(module.exports, createRequire(bundle), module, bundle, dirname(bundle));
}

function codeCacheFile(file: string, text: string): string | undefined {
  const directory = cacheDirectory();
  if (!directory) return undefined;
  const { mtimeMs } = statSync(file);
  const build = createHash('sha256')
    .update(`${file}\n${text.length}\n${mtimeMs}\n${process.version}\n${process.arch}`)
    .digest('hex')
    .slice(0, 16);
  return join(directory, `code-${build}.bin`);
}

/** Atomically, owner-only; files of other builds go once a day old. Only a cache: failing is fine. */
function save(file: string, data: Buffer): void {
  if (writeCacheFile(file, data)) removeStale(dirname(file), file, /^code-[0-9a-f]+\.bin(\.\d+\.tmp)?$/, staleAfterMs);
}
