/**
 * What a TypeScript unit's `import ... from 'tenantify'` loads: the API of the tenantify that
 * runs the unit, the module already in memory. Left to itself, tsx (which compiles the unit,
 * load.ts) loads the whole package again under its own namespace and compiles each of its
 * files anew: 2-3 s on every command of a plan with a TypeScript unit, for the one function
 * the unit calls (bench/startup.ts, `ts-unit`). One copy also means one version: the
 * definitions a unit makes are the executor's own.
 *
 * tsx compiles a unit as CommonJS or as an ES module (as the package.json above it says), so
 * there is a hook for each, installed once, before the first unit is loaded:
 * - CommonJS: its `require('tenantify')` asks Module._resolveFilename, answered with a key
 *   that require's cache already holds, the API;
 * - ES module: a resolve hook (module.register) answers with a module that re-exports the
 *   API from a global.
 * Each catches the bare `tenantify`, and any specifier that resolves to this package's own
 * entry: dist/index.js, named by a path, or src/index.ts, where tsx follows the `paths` of a
 * checkout's tsconfig.json (tsx reads the current directory's, and this repository's maps the
 * name to the sources for the type check). Every other import goes on as usual. Without a
 * provided API (a module of the package imported on its own), units load as before.
 */
import Module, { createRequire, register } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

type Api = Record<string, unknown>;

let provider: (() => Promise<Api>) | undefined;
let installing: Promise<void> | undefined;

const globalKey = Symbol.for('tenantify.api');
/** require's cache key for the API: no file has this name. */
const cacheKey = '\0tenantify';

/**
 * Lends the running API to the units loaded from now on (index.ts, the CLI). A loader, so
 * that the CLI loads the whole API only for a plan with a TypeScript unit.
 */
export function provideUnitApi(load: () => Promise<Api>): void {
  provider ??= load;
}

/** Before a unit is imported: its `tenantify` is the provided API, when there is one. */
export function useRunningApiInUnits(): Promise<void> {
  const load = provider;
  if (!load) return Promise.resolve();
  return (installing ??= load().then((api) => {
    const entries = packageEntries();
    (globalThis as { [globalKey]?: Api })[globalKey] = api;
    hookRequire(api, entries);
    // A module's exports are identifiers; `default` cannot be a const (and the API has none).
    hookImport(
      Object.keys(api).filter((name) => name !== 'default' && /^[A-Za-z_$][\w$]*$/.test(name)),
      entries,
    );
  }));
}

/** This package's entry files, built and source, as a specifier naming one by its path resolves; none if the package cannot be found. */
function packageEntries(): string[] {
  try {
    const built = createRequire(import.meta.url).resolve('tenantify');
    return [built, join(dirname(dirname(built)), 'src', 'index.ts')];
  } catch {
    return [];
  }
}

interface ModuleInternals {
  _cache: Record<string, Module>;
  _resolveFilename(this: unknown, request: string, ...rest: unknown[]): string;
}

function hookRequire(api: Api, entries: string[]): void {
  const internals = Module as unknown as ModuleInternals;
  const cached = new Module(cacheKey);
  Object.assign(cached, { exports: api, loaded: true, filename: cacheKey });
  internals._cache[cacheKey] = cached;
  const resolveFilename = internals._resolveFilename;
  internals._resolveFilename = function (request, ...rest) {
    if (request === 'tenantify') return cacheKey;
    const file = resolveFilename.call(this, request, ...rest);
    return entries.includes(file.split('?')[0] ?? file) ? cacheKey : file;
  };
}

function hookImport(names: string[], entries: string[]): void {
  const api = `const api = globalThis[Symbol.for('tenantify.api')];\nexport const { ${names.join(', ')} } = api;\n`;
  const hooks = `
let api, entries;
export function initialize(data) { api = data.api; entries = data.entries; }
export async function resolve(specifier, context, next) {
  if (specifier === 'tenantify') return { url: api, shortCircuit: true };
  const resolved = await next(specifier, context);
  return entries.includes(resolved.url.split('?')[0]) ? { url: api, shortCircuit: true } : resolved;
}`;
  register(dataUrl(hooks), {
    data: { api: dataUrl(api), entries: entries.map((file) => pathToFileURL(file).href) },
  });
}

function dataUrl(source: string): string {
  return `data:text/javascript,${encodeURIComponent(source)}`;
}
