/** tenantify.config.json: optional, validated, unknown keys are an error. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod';
import { PlanError } from '../errors.js';
import { durationSchema } from './directives.js';

const identifier = z.string().regex(/^[a-z_][a-z0-9_]*$/, 'a lower-case SQL identifier');

const guardSchema = z.strictObject({
  name: z.string().min(1),
  sql: z.string().min(1),
  threshold: z.number().positive().optional(),
  repetitions: z.number().int().min(1).max(100).optional(),
});

export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  ledgerSchema: identifier.default('tenantify'),
  snapshotDir: z.string().min(1).default('.tenantify/snapshots'),
  /** Snapshots of more than this many megabytes use pg_dump's directory format with parallel jobs. */
  snapshotParallelAboveMb: z.number().positive().default(1024),
  lockTimeout: durationSchema.optional(),
  statementTimeout: durationSchema.optional(),
  retries: z.number().int().min(0).max(100).default(3),
  batch: z
    .strictObject({
      size: z.number().int().positive().optional(),
      targetDuration: durationSchema.optional(),
      pause: durationSchema.optional(),
      maxReplicationLag: durationSchema.optional(),
      parallel: z.number().int().min(1).max(64).optional(),
    })
    .default({}),
  guards: z.array(guardSchema).default([]),
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
    throw new PlanError(configFileName, undefined, `cannot be read: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    const line = position === undefined ? undefined : text.slice(0, Number(position)).split('\n').length;
    throw new PlanError(configFileName, line, `is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = configSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = issue?.path.map(String) ?? [];
  const key = issue?.code === 'unrecognized_keys' ? (issue.keys[0] ?? '') : (path[path.length - 1] ?? '');
  const line = key ? lineOfKey(text, key) : undefined;
  const where = path.length > 0 ? ` at ${path.join('.')}` : '';
  const message = issue?.code === 'unrecognized_keys' ? `unknown key "${key}"${where}` : `${issue?.message ?? 'invalid'}${where}`;
  throw new PlanError(configFileName, line, message, `allowed keys: ${Object.keys(configSchema.shape).join(', ')}`);
}

function lineOfKey(text: string, key: string): number | undefined {
  const index = text.indexOf(`"${key}"`);
  return index === -1 ? undefined : text.slice(0, index).split('\n').length;
}
