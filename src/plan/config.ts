/** tenantify.config.json: optional, validated, unknown keys are an error. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod/mini';
import { PlanError } from '../errors.js';
import { tenancySchema } from '../tenancy/model.js';
import { durationSchema, dutySchema, lockTimeoutSchema, maxBatchSize, pauseSchema } from './directives.js';

/**
 * The ledger's own schema: PostgreSQL keeps the first 63 bytes of a name (two longer names
 * would share a ledger but not a run lock); its system schemas are not tenantify's, and
 * `public` holds the application's tables.
 */
const ledgerSchemaName = z.string().check(
  z.regex(/^[a-z_][a-z0-9_]*$/, 'a lower-case SQL identifier'),
  z.maxLength(63, 'at most 63 characters (PostgreSQL cuts longer names)'),
  z.refine((name) => !/^pg_/.test(name) && name !== 'information_schema', 'not a system schema (pg_*, information_schema)'),
  z.refine((name) => name !== 'public', "a schema of its own, not public (where the application's tables live)"),
);
const text = z.string().check(z.minLength(1));
const positive = z.number().check(z.positive());
const whole = (min: number, max: number) => z.int().check(z.minimum(min), z.maximum(max));

const guardSchema = z.strictObject({
  name: text,
  sql: text,
  threshold: z.optional(positive),
  repetitions: z.optional(whole(1, 100)),
});

export const configSchema = z.strictObject({
  $schema: z.optional(z.string()),
  ledgerSchema: z._default(ledgerSchemaName, 'tenantify'),
  snapshotDir: z._default(text, '.tenantify/snapshots'),
  /** Snapshots of more than this many megabytes use pg_dump's directory format with parallel jobs. */
  snapshotParallelAboveMb: z._default(positive, 1024),
  /** Every unit's lock timeout unless it sets its own: a duration, or none (no limit); default 500ms. */
  lockTimeout: z.optional(lockTimeoutSchema),
  statementTimeout: z.optional(durationSchema),
  retries: z._default(whole(0, 100), 3),
  batch: z._default(
    z.strictObject({
      size: z.optional(whole(1, maxBatchSize)),
      targetDuration: z.optional(pauseSchema),
      pause: z.optional(pauseSchema),
      maxReplicationLag: z.optional(pauseSchema),
      parallel: z.optional(whole(1, 64)),
      /** How batched backfills yield to the application (src/exec/throttle.ts): off, or its settings. */
      throttle: z.optional(
        z.union([
          z.literal('off'),
          z.strictObject({
            /** The probe query's latency limit; default 4x its latency before the first batch, at least 5 ms. */
            probeLatency: z.optional(pauseSchema),
            /** The share of wall time each worker spends in batches (default 1/3: a pause twice as long as each batch). */
            duty: z.optional(dutySchema),
            maxPause: z.optional(pauseSchema),
          }),
        ]),
      ),
    }),
    {},
  ),
  guards: z._default(z.array(guardSchema), []),
  /** Lint (src/lint): `error` makes apply refuse a unit with an error-level finding not allowed; `off` leaves plan and apply silent. */
  lint: z._default(
    z.strictObject({
      level: z._default(z.enum(['warning', 'error', 'off']), 'warning'),
      /** Per rule: its level, or off. */
      rules: z._default(z.record(z.string().check(z.regex(/^[a-z][a-z0-9-]*$/, 'a rule name')), z.enum(['warning', 'error', 'off'])), {}),
      /** unbatched-update-large-table: tables with more rows than this (pg_class.reltuples) want a batch directive. */
      largeTableRows: z._default(z.int().check(z.minimum(0)), 100_000),
    }),
    { level: 'warning', rules: {}, largeTableRows: 100_000 },
  ),
  /** The tenancy model (docs/tenancy.md): read by `tenancy analyze`, `scaffold` and `check`. */
  tenancy: z.optional(tenancySchema),
});

export type Config = z.infer<typeof configSchema>;
export const configFileName = 'tenantify.config.json';

export async function loadConfig(directory: string): Promise<Config> {
  const file = join(directory, configFileName);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return configSchema.parse({});
    throw new PlanError(`cannot be read: ${(error as Error).message}`, { code: 'config-unreadable', file: configFileName });
  }
  // A BOM (editors on Windows write one) is not JSON: dropped, as in units.
  text = text.replace(/^\uFEFF/, '');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    const line = position === undefined ? undefined : text.slice(0, Number(position)).split('\n').length;
    throw new PlanError(`is not valid JSON: ${(error as Error).message}`, { code: 'config-invalid-json', file: configFileName, line });
  }
  const parsed = configSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = issue?.path.map(String) ?? [];
  const key = issue?.code === 'unrecognized_keys' ? (issue.keys[0] ?? '') : (path[path.length - 1] ?? '');
  const line = key ? lineOfKey(text, key) : undefined;
  const where = path.length > 0 ? ` at ${path.join('.')}` : '';
  if (issue?.code === 'unrecognized_keys') {
    const allowed = keysAt(path);
    throw new PlanError(`unknown key "${key}"${where}`, {
      file: configFileName,
      line,
      code: 'config-unknown-key',
      hint: allowed ? `allowed keys${where}: ${allowed.join(', ')}` : undefined,
    });
  }
  throw new PlanError(`${issue?.message ?? 'invalid'}${where}`, {
    file: configFileName,
    line,
    code: 'config-invalid',
    hint: `fix the value of ${path.join('.') || 'the file'} (README: "tenantify.config.json" says what each key takes)`,
  });
}

/** The keys the object at `path` of the configuration takes, when the schema there is an object. */
function keysAt(path: string[]): string[] | undefined {
  type Node = { shape?: Record<string, Node>; _zod?: { def?: { innerType?: Node } } };
  const unwrap = (node: Node | undefined): Node | undefined => {
    let current = node;
    while (current?._zod?.def?.innerType) current = current._zod.def.innerType;
    return current;
  };
  let node = unwrap(configSchema as unknown as Node);
  for (const key of path) node = unwrap(node?.shape?.[key]);
  return node?.shape ? Object.keys(node.shape) : undefined;
}

function lineOfKey(text: string, key: string): number | undefined {
  const index = text.indexOf(`"${key}"`);
  return index === -1 ? undefined : text.slice(0, index).split('\n').length;
}
