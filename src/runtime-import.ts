/**
 * `import()` of a package the CLI loads only when needed (libpg-query, tsx, testcontainers).
 * bin/tenantify runs the bundle from V8's code cache (src/cli/code-cache.ts), and in
 * Node.js 20 a script compiled from a code cache cannot `import()`: the launcher lends its
 * own, under this symbol.
 * Anywhere else (the package's API, the bundle run by hand) it is the usual `import()`.
 */
const lent = Symbol.for('tenantify.import');

export function runtimeImport<T>(specifier: string, usual: () => Promise<T>): Promise<T> {
  const importer = (globalThis as { [lent]?: (specifier: string) => Promise<unknown> })[lent];
  return importer ? (importer(specifier) as Promise<T>) : usual();
}
