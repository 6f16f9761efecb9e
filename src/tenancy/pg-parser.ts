/**
 * The one parser `tenancy check` loads: @libpg-query/parser, PostgreSQL's own parser
 * compiled to WebAssembly, whose build carries the PL/pgSQL parser beside the SQL one. Policy
 * expressions (policy-expr.ts) and function bodies (function-body.ts) are both read with it,
 * so a check that needs both loads and compiles one module, not two; and none at all when no
 * rule needs parsing (the rules say so: `parses`).
 */
import Module, { createRequire } from 'node:module';
import { runtimeImport } from '../runtime-import.js';

export interface PgParser {
  parseSync(sql: string): unknown;
  parsePlPgSQLSync(sql: string): unknown;
}

let loaded: Promise<PgParser> | undefined;
let ready: PgParser | undefined;

/** Loads the parser once per process. */
export function loadPgParser(): Promise<PgParser> {
  loaded ??= (async () => {
    // No V8 flag here: the command line sets --liftoff-only before the bundle runs (src/cli/code-cache.ts); a library leaves process-wide settings to the application.
    withoutDeparser();
    const mod = await runtimeImport('@libpg-query/parser', () => import('@libpg-query/parser'));
    await mod.loadModule();
    ready = mod as unknown as PgParser;
    return ready;
  })();
  return loaded;
}

/** The parser once loaded; `what` names the loader the caller forgot to await. */
export function loadedPgParser(what: string): PgParser {
  if (!ready) throw new Error(`${what}() must be awaited before parsing`);
  return ready;
}

/**
 * @libpg-query/parser requires its proto.js when it loads: 5.4 MB of JavaScript (the
 * protobuf classes of every node type) that only its deparser uses; parsing never reaches
 * it. An empty module stands in for it in require's cache, so loading the parser costs
 * about 0.1 s instead of 0.5-0.7 s (loaded side by side, load 6-9 on 2 cores; see
 * bench/check-ways.ts for the whole check). Nothing here deparses: should a version parse
 * through proto.js, the parse fails and the parsers' tests say so.
 */
function withoutDeparser(): void {
  const require = createRequire(import.meta.url);
  let proto: string;
  try {
    proto = require.resolve('@libpg-query/parser/proto.js');
  } catch {
    return; // laid out otherwise: loaded whole
  }
  require.cache[proto] ??= Object.assign(new Module(proto), { filename: proto, loaded: true, exports: {} });
}
