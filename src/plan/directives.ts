/**
 * `-- tenantify:NAME VALUE` directive lines, validated with zod. A bad directive is a plan
 * error naming the file and line.
 */
import * as z from 'zod';
import { PlanError } from '../errors.js';
import type { BatchDirective, SnapshotScope, UnitOptions } from './types.js';

export const directivePrefix = /^--\s*tenantify:([A-Za-z-]*)\s*(.*?)\s*$/;
export const sectionNames = ['precheck', 'verify'] as const;

const identifier = /^(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")(?:\.(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+"))?$/;

export const durationSchema = z
  .string()
  .regex(/^\d+(?:\.\d+)?\s*(?:ms|s|min|m|h)?$/, 'a duration like 500ms, 5s, 2min or 1h')
  .transform((text) => {
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|min|m|h)?$/.exec(text) as RegExpExecArray;
    const factor = { ms: 1, s: 1000, min: 60_000, m: 60_000, h: 3_600_000 }[(match[2] ?? 'ms') as 'ms'];
    return Math.round(Number(match[1]) * factor);
  });

const snapshotSchema = z.string().transform((text, ctx): SnapshotScope => {
  if (text === 'none' || text === 'schema' || text === 'full') return { kind: text };
  const tables = text.split(',').map((t) => t.trim());
  if (tables.length === 0 || tables.some((t) => !identifier.test(t))) {
    ctx.addIssue({ code: 'custom', message: 'none, schema, full, or a comma-separated list of tables' });
    return z.NEVER;
  }
  return { kind: 'tables', tables };
});

const batchSchema = z.string().transform((text, ctx): BatchDirective => {
  const [table, ...rest] = text.split(/\s+/);
  const fields = new Map<string, string>();
  for (const part of rest) {
    const [k, v] = part.split('=', 2);
    if (!k || v === undefined || !['key', 'size'].includes(k) || fields.has(k)) {
      ctx.addIssue({ code: 'custom', message: `unexpected "${part}": write <table> key=<column> [size=N]` });
      return z.NEVER;
    }
    fields.set(k, v);
  }
  const key = fields.get('key');
  const size = Number(fields.get('size') ?? 10_000);
  if (!table || !identifier.test(table) || !key || !identifier.test(key)) {
    ctx.addIssue({ code: 'custom', message: 'write <table> key=<column> [size=N]' });
    return z.NEVER;
  }
  if (!Number.isInteger(size) || size < 1) {
    ctx.addIssue({ code: 'custom', message: `size must be a positive integer, not "${fields.get('size')}"` });
    return z.NEVER;
  }
  return { table, key, size };
});

const directiveSchemas = {
  transaction: z.enum(['on', 'off'], { error: 'on or off' }),
  snapshot: snapshotSchema,
  'lock-timeout': durationSchema,
  'statement-timeout': durationSchema,
  retries: z.coerce.number({ error: 'a whole number' }).int('a whole number').min(0).max(100),
  batch: batchSchema,
} as const;

export type DirectiveName = keyof typeof directiveSchemas;
export const directiveNames = Object.keys(directiveSchemas) as DirectiveName[];

export interface DirectiveLine {
  name: string;
  value: string;
  line: number;
}

export interface DirectiveDefaults {
  lockTimeoutMs: number | undefined;
  statementTimeoutMs: number | undefined;
  retries: number;
}

/** Turns the header's directive lines into a unit's options. */
export function parseDirectives(file: string, lines: DirectiveLine[], defaults: DirectiveDefaults): UnitOptions {
  const seen = new Map<string, number>();
  const options: UnitOptions = {
    transaction: true,
    snapshot: { kind: 'default' },
    lockTimeoutMs: defaults.lockTimeoutMs,
    statementTimeoutMs: defaults.statementTimeoutMs,
    retries: defaults.retries,
    batch: undefined,
  };
  for (const { name, value, line } of lines) {
    if (!(name in directiveSchemas)) {
      const known = [...directiveNames, ...sectionNames].join(', ');
      throw new PlanError(file, line, `unknown directive "tenantify:${name}"`, `known directives: ${known}`);
    }
    const previous = seen.get(name);
    if (previous !== undefined) throw new PlanError(file, line, `directive "tenantify:${name}" is given twice (first on line ${previous})`);
    seen.set(name, line);
    const parsed = directiveSchemas[name as DirectiveName].safeParse(value);
    if (!parsed.success) {
      const reason = parsed.error.issues[0]?.message ?? 'invalid value';
      throw new PlanError(file, line, `bad value "${value}" for tenantify:${name}: expected ${reason}`);
    }
    const v = parsed.data;
    switch (name as DirectiveName) {
      case 'transaction': options.transaction = v === 'on'; break;
      case 'snapshot': options.snapshot = v as SnapshotScope; break;
      case 'lock-timeout': options.lockTimeoutMs = v as number; break;
      case 'statement-timeout': options.statementTimeoutMs = v as number; break;
      case 'retries': options.retries = v as number; break;
      case 'batch': options.batch = v as BatchDirective; break;
    }
  }
  return options;
}
