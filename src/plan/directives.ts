/**
 * `-- tenantify:NAME VALUE` directive lines, validated with zod. A bad directive is a plan
 * error naming the file and line.
 */
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { PlanError } from '../errors.js';
import type { BatchDirective, LintAllow, SnapshotScope, ThrottleSettings, UnitOptions } from './types.js';

export const directivePrefix = /^--\s*tenantify:([A-Za-z-]*)\s*(.*?)\s*$/;
export const sectionNames = ['precheck', 'verify'] as const;

/** How a precheck walks its table in ranges: the line after its marker (sql-unit.ts). */
export const rangesUsage =
  '-- tenantify:precheck <what must hold>, then -- tenantify:ranges <table> key=<column> [size=N], then the query with $1 and $2';

const identifier = /^(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")(?:\.(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+"))?$/;

// zod/mini: the same validation as zod's classic API, built several times faster (every
// command builds these schemas at start); messages come from the English locale.
z.config(en());

/** PostgreSQL takes lock_timeout and statement_timeout in milliseconds up to INT_MAX. */
export const maxTimeoutMs = 2_147_483_647;
/** A batch's pause and target duration: Node's timers overflow past 2^31-1 ms; more than an hour between batches is a mistake. */
export const maxPauseMs = 3_600_000;
/** Rows in one batch: a batch is one transaction; past a million rows it is no longer a batch. */
export const maxBatchSize = 1_000_000;

/** A duration like 500ms, 5s, 2min or 1h, in milliseconds, at most `maxMs` (`limit` says why). */
export function duration(maxMs: number, limit: string) {
  return z.pipe(
    z.string().check(z.regex(/^\d+(?:\.\d+)?\s*(?:ms|s|min|m|h)?$/, 'a duration like 500ms, 5s, 2min or 1h')),
    z.pipe(
      z.transform((text: string) => {
        const match = /^(\d+(?:\.\d+)?)\s*(ms|s|min|m|h)?$/.exec(text) as RegExpExecArray;
        const factor = { ms: 1, s: 1000, min: 60_000, m: 60_000, h: 3_600_000 }[(match[2] ?? 'ms') as 'ms'];
        return Math.round(Number(match[1]) * factor);
      }),
      z.number().check(z.maximum(maxMs, `a duration of at most ${limit}`)),
    ),
  );
}

/** A lock or statement timeout. */
export const durationSchema = duration(maxTimeoutMs, `${maxTimeoutMs}ms (about 24 days: PostgreSQL's limit)`);
/**
 * With no lock timeout anywhere, a unit waits this long for a lock, then retries after a
 * growing pause: queued behind a long transaction, its lock request would otherwise hold
 * up every application query on the table behind it (pgroll's default too).
 */
export const defaultLockTimeoutMs = 500;

/** A lock timeout, or `none`: wait for locks without limit (null). */
export const lockTimeoutSchema = parsedString((text): number | null | { problem: string } => {
  if (text === 'none') return null;
  const parsed = durationSchema.safeParse(text);
  return parsed.success ? parsed.data : { problem: `${parsed.error.issues[0]?.message ?? 'a duration'}, or none (no limit)` };
});

/** A pause between batches, or a batch's target duration. */
export const pauseSchema = duration(maxPauseMs, '1h');

/** A decimal whole number from `min` to `max`: no sign, no hexadecimal, no exponent. */
export function decimalInteger(min: number, max: number) {
  return parsedString((text): number | { problem: string } => {
    if (!/^\d+$/.test(text)) return { problem: `a whole number from ${min} to ${max} in decimal digits` };
    const value = Number(text);
    if (value < min || value > max) return { problem: `a whole number from ${min} to ${max}` };
    return value;
  });
}

/** A string turned into a value by `parse`, which returns a message instead when the text is wrong. */
function parsedString<T>(parse: (text: string) => T | { problem: string }) {
  return z.pipe(
    z.string(),
    z.transform((text: string, ctx): T => {
      const value = parse(text);
      if (typeof value === 'object' && value !== null && 'problem' in value) {
        ctx.issues.push({ code: 'custom', message: value.problem, input: text });
        return z.NEVER;
      }
      return value;
    }),
  );
}

/**
 * Splits a directive's value where `separator` matches outside double quotes, as SQL reads
 * identifiers: `public."Customer Accounts" key="Customer ID"` is two words, `"a,b", c` two
 * names. An unclosed quote keeps the rest in the last piece (the identifier check refuses it).
 */
export function splitOutsideQuotes(text: string, separator: RegExp): string[] {
  const pieces: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && separator.test(ch)) {
      pieces.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  pieces.push(current);
  return pieces;
}

const snapshotSchema = parsedString((text): SnapshotScope | { problem: string } => {
  if (text === 'none' || text === 'schema' || text === 'full') return { kind: text };
  const tables = splitOutsideQuotes(text, /,/).map((t) => t.trim());
  const keyword = tables.find((t) => t === 'none' || t === 'schema' || t === 'full');
  if (keyword && tables.length > 1)
    return { problem: `none, schema or full alone, or a comma-separated list of tables ("${keyword}" is not a table here)` };
  if (tables.length === 0 || tables.some((t) => !identifier.test(t)))
    return { problem: 'none, schema, full, or a comma-separated list of tables' };
  return { kind: 'tables', tables };
});

export const batchSchema = parsedString((text): BatchDirective | { problem: string } => {
  const [table, ...rest] = splitOutsideQuotes(text, /\s/).filter((word) => word !== '');
  const fields = new Map<string, string>();
  for (const part of rest) {
    const eq = part.indexOf('=');
    const [k, v] = eq === -1 ? [part, undefined] : [part.slice(0, eq), part.slice(eq + 1)];
    if (!k || v === undefined || !['key', 'size'].includes(k) || fields.has(k)) {
      return {
        problem: `<table> key=<column> [size=N], with double quotes around a name that holds a space (the part ${part} is not key= or size=)`,
      };
    }
    fields.set(k, v);
  }
  const key = fields.get('key');
  const sizeText = fields.get('size') ?? '10000';
  const size = Number(sizeText);
  if (!table || !identifier.test(table) || !key || !identifier.test(key)) return { problem: 'write <table> key=<column> [size=N]' };
  if (!/^\d+$/.test(sizeText) || size < 1 || size > maxBatchSize)
    return { problem: `size must be a whole number from 1 to ${maxBatchSize}, not "${sizeText}"` };
  return { table, key, size };
});

/** The share of wall time a backfill spends in batches: a decimal above 0 and at most 1. */
export const dutySchema = z.number().check(z.positive('above 0'), z.maximum(1, 'at most 1 (1: no pause)'));

/** `throttle off`, `throttle on`, or any of `probe=<duration> duty=<fraction> max-pause=<duration>`. */
const throttleSchema = parsedString((text): Partial<ThrottleSettings> | { problem: string } => {
  if (text === 'off') return { enabled: false };
  if (text === 'on') return { enabled: true };
  const usage = 'off, on, or any of probe=<duration> duty=<fraction from 0 to 1> max-pause=<duration>';
  const out: Partial<ThrottleSettings> = { enabled: true };
  const seen = new Set<string>();
  for (const part of text.split(/\s+/)) {
    const [k, v] = part.split('=', 2);
    if (!k || v === undefined || seen.has(k)) return { problem: `${usage}, not "${part}"` };
    seen.add(k);
    if (k === 'duty') {
      const duty = /^\d+(?:\.\d+)?$/.test(v) ? dutySchema.safeParse(Number(v)) : undefined;
      if (!duty?.success) return { problem: `duty is a decimal above 0 and at most 1, not "${v}"` };
      out.duty = duty.data;
    } else if (k === 'probe' || k === 'max-pause') {
      const ms = pauseSchema.safeParse(v);
      if (!ms.success) return { problem: `${k} is ${ms.error.issues[0]?.message ?? 'a duration'}, not "${v}"` };
      if (k === 'probe') out.probeLimitMs = ms.data;
      else out.maxPauseMs = ms.data;
    } else {
      return { problem: `${usage}, not "${part}"` };
    }
  }
  return out;
});

const directiveSchemas = {
  transaction: z.enum(['on', 'off'], { error: 'on or off' }),
  snapshot: snapshotSchema,
  'lock-timeout': lockTimeoutSchema,
  'statement-timeout': durationSchema,
  retries: decimalInteger(0, 100),
  batch: batchSchema,
  triggers: z.enum(['on', 'off'], { error: 'on or off' }),
  throttle: throttleSchema,
  allow: parsedString((text): Omit<LintAllow, 'line'> | { problem: string } => {
    const match = /^([a-z][a-z0-9-]*)\s+(\S.*)$/.exec(text);
    return match
      ? { rule: match[1] as string, reason: match[2] as string }
      : { problem: 'a lint rule and why it is safe here: allow <rule> <why>' };
  }),
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
    if (name === 'ranges')
      throw new PlanError('tenantify:ranges applies to the precheck marker right above it, not to the unit', {
        code: 'section-invalid',
        file,
        line,
        hint: rangesUsage,
      });
    if (!(name in directiveSchemas)) {
      const known = [...directiveNames, ...sectionNames].join(', ');
      throw new PlanError(`unknown directive "tenantify:${name}"`, {
        code: 'directive-unknown',
        file,
        line,
        hint: `known directives: ${known}`,
      });
    }
    const previous = seen.get(name);
    // allow may be given once per rule.
    if (previous !== undefined && name !== 'allow')
      throw new PlanError(`directive "tenantify:${name}" is given twice (first on line ${previous})`, {
        code: 'directive-repeated',
        file,
        line,
      });
    seen.set(name, line);
    const parsed = directiveSchemas[name as DirectiveName].safeParse(value);
    if (!parsed.success) {
      const reason = parsed.error.issues[0]?.message ?? 'invalid value';
      throw new PlanError(`bad value "${value}" for tenantify:${name}: expected ${reason}`, { code: 'directive-invalid', file, line });
    }
    const v = parsed.data;
    switch (name as DirectiveName) {
      case 'transaction':
        options.transaction = v === 'on';
        break;
      case 'snapshot':
        options.snapshot = { ...(v as SnapshotScope), line };
        break;
      case 'lock-timeout':
        options.lockTimeoutMs = (v as number | null) ?? undefined;
        break;
      case 'statement-timeout':
        options.statementTimeoutMs = v as number;
        break;
      case 'retries':
        options.retries = v as number;
        break;
      case 'batch':
        options.batch = v as BatchDirective;
        break;
      case 'triggers':
        if (v === 'off') options.triggersOff = true;
        break;
      case 'throttle':
        options.throttle = v as Partial<ThrottleSettings>;
        break;
      case 'allow':
        (options.allow ??= []).push({ ...(v as Omit<LintAllow, 'line'>), line });
        break;
    }
  }
  return options;
}
