/**
 * The Prisma CLI's configuration for the tests (test/support/prisma.ts passes it with
 * --config). Prisma 6.19 runs here without any engine download: its WebAssembly schema
 * engine (`engine: 'js'`) through @prisma/adapter-pg. Paths and databases come from the
 * environment the helper sets: TENANTIFY_PRISMA_SCHEMA, TENANTIFY_PRISMA_MIGRATIONS,
 * DATABASE_URL and TENANTIFY_PRISMA_SHADOW_URL.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { defineConfig } from 'prisma/config';

/**
 * The CLI exits when its work is done, not 10 s later. The WebAssembly schema engine arms a
 * 10-second timer around its advisory lock (`migrate resolve`, `deploy`, `diff`) and never
 * clears it: each such command sat idle that long before exiting (11 s instead of 1.5). Timers
 * that long are unref'd: they still fire while the CLI has work to wait on (the lock's query
 * on its socket, which is what the timer races). A command whose only pending work were such
 * a timer would end early: none of the commands the tests run sleeps that long.
 */
const armTimer = globalThis.setTimeout as (handler: () => void, ms?: number, ...rest: unknown[]) => NodeJS.Timeout;
globalThis.setTimeout = ((handler: () => void, ms?: number, ...rest: unknown[]) => {
  const timer = armTimer(handler, ms, ...rest);
  if ((ms ?? 0) >= 10_000) timer.unref();
  return timer;
}) as typeof setTimeout;

/** PostgreSQL's `name`-family types (char, name, int2vector, regproc, oidvector, pg_node_tree, regconfig) read as text. */
const asText = new Set([18, 19, 22, 24, 30, 194, 2205]);
/** Arrays of `name` and of int2vector read as text[]. */
const asTextArray = new Set([1002, 1003]);

/**
 * A pg client that relabels those types before adapter-pg sees the field list: the adapter
 * rejects them (Prisma's introspection reads catalog columns of type name), an open Prisma bug.
 */
class RelabellingClient extends pg.Client {
  override query(...args: unknown[]): never {
    const last = args.length - 1;
    const callback = args[last];
    // pg.Pool passes a callback; a direct client.query returns a promise.
    if (typeof callback === 'function') {
      args[last] = (error: unknown, result: pg.QueryResult) => callback(error, error ? result : relabel(result));
      return (super.query as (...a: unknown[]) => never)(...args);
    }
    const result = (super.query as (...a: unknown[]) => unknown)(...args);
    return (result instanceof Promise ? result.then(relabel) : result) as never;
  }
}

function relabel(result: pg.QueryResult): pg.QueryResult {
  for (const field of result?.fields ?? []) {
    if (asText.has(field.dataTypeID)) field.dataTypeID = 25;
    else if (asTextArray.has(field.dataTypeID)) field.dataTypeID = 1009;
  }
  return result;
}

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (test/support/prisma.ts sets it)`);
  return value;
}

type Adapter = Awaited<ReturnType<PrismaPg['connect']>>;

/**
 * adapter-pg runs a migration script statement by statement, split at every `;` (inside a
 * function body or a comment too). Prisma's schema engine binary sends the whole script at
 * once, as one simple query (one implicit transaction): the adapter does the same here.
 */
function wholeScripts(adapter: Adapter, pool: pg.Pool): Adapter {
  adapter.executeScript = async (script: string) => {
    try {
      await pool.query(script);
    } catch (error) {
      (adapter as unknown as { onError: (e: unknown) => never }).onError(error);
    }
  };
  return adapter;
}

function adapterFor(connectionString: string): PrismaPg {
  // allowExitOnIdle: the pool's idle connections (10 s by default) do not hold the CLI's exit either.
  const pool = new pg.Pool({ connectionString, Client: RelabellingClient, allowExitOnIdle: true });
  const factory = new PrismaPg(pool);
  const connect = factory.connect.bind(factory);
  factory.connect = async () => wholeScripts(await connect(), pool);
  return factory;
}

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: env('TENANTIFY_PRISMA_SCHEMA'),
  migrations: { path: env('TENANTIFY_PRISMA_MIGRATIONS') },
  adapter: async () => {
    const factory = adapterFor(env('DATABASE_URL'));
    // The adapter's own shadow database has a random name it cannot always drop: a fixed one
    // per test database instead, dropped and created again each time.
    const shadowUrl = env('TENANTIFY_PRISMA_SHADOW_URL');
    factory.connectToShadowDb = async () => {
      const shadow = new URL(shadowUrl).pathname.slice(1);
      const admin = new pg.Client({ connectionString: env('DATABASE_URL') });
      await admin.connect();
      try {
        await admin.query(`DROP DATABASE IF EXISTS "${shadow}" WITH (FORCE)`);
        // FILE_COPY where the server has it (15+): src/db/scratch-database.ts says why it is faster on the test server.
        const { rows } = await admin.query<{ v: number }>("SELECT current_setting('server_version_num')::int AS v");
        await admin.query(`CREATE DATABASE "${shadow}" TEMPLATE template0${(rows[0]?.v ?? 0) >= 150000 ? ' STRATEGY FILE_COPY' : ''}`);
      } finally {
        await admin.end();
      }
      return adapterFor(shadowUrl).connect();
    };
    return factory;
  },
});
