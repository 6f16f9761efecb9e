/**
 * Reads a plan directory into units. Every problem found is collected and reported at once
 * as a plan error (exit 2) before anything touches a database.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PlanError, PlanErrors, UsageError } from '../errors.js';
import type { Config } from './config.js';
import { isUnitDefinition, type UnitDefinition } from './define.js';
import { defaultLockTimeoutMs, durationSchema, lockTimeoutSchema, maxBatchSize } from './directives.js';
import { loadSqlParser, openSplits, SqlParserNeeded, type Splits } from './sql-split.js';
import { parseSqlUnit, readSqlUnit, streamedUnitBytes, type ParsedSql } from './sql-unit.js';
import { compareOrder, type Script, type Unit, type UnitKind, type UnitOptions } from './types.js';
import { runtimeImport } from '../runtime-import.js';
import { useRunningApiInUnits } from './unit-api.js';

/** NNNN_name.sql, or NNNNa_name.sql: a lower-case letter after the number places a unit after NNNN_ and before the next number. */
export const unitFilePattern = /^(\d+)([a-z]?)_([A-Za-z0-9][A-Za-z0-9_.-]*)\.(sql|ts)$/;
const folders: { folder: string; kind: UnitKind | 'rollback' }[] = [
  { folder: 'migrations', kind: 'migration' },
  { folder: 'backfills', kind: 'backfill' },
  { folder: 'rollbacks', kind: 'rollback' },
];

/** sha256 of the file's bytes with CRLF line endings normalised to LF. */
export function checksum(bytes: Buffer): string {
  return createHash('sha256').update(bytes.toString('utf8').replace(/\r\n/g, '\n')).digest('hex');
}

interface FoundFile {
  file: string;
  absolutePath: string;
  id: string;
  prefix: bigint;
  letter: string;
  name: string;
  format: 'sql' | 'ts';
  kind: UnitKind | 'rollback';
}

export async function loadPlan(directory: string, config: Config): Promise<Unit[]> {
  const root = resolve(directory);
  await ensureDirectory(root);
  const errors: PlanError[] = [];
  const found: FoundFile[] = [];
  for (const { folder, kind } of folders) {
    let entries: string[];
    try {
      entries = (await readdir(join(root, folder), { withFileTypes: true }))
        .filter((e) => e.isFile() || e.isSymbolicLink())
        .map((e) => e.name)
        .sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      errors.push(new PlanError(`cannot be read: ${(error as Error).message}`, { code: 'plan-dir-unreadable', file: `${folder}/` }));
      continue;
    }
    for (const entry of entries) {
      const file = `${folder}/${entry}`;
      if (!/\.(sql|ts)\s*$/i.test(entry)) continue;
      // A unit file that a case-sensitive filesystem or a stray space would make invisible is refused, not skipped.
      if (!/\.(sql|ts)$/.test(entry)) {
        errors.push(
          new PlanError(`is not read as a unit: its name must end in .sql or .ts exactly (lower case, nothing after)`, {
            code: 'unit-name-invalid',
            file,
            hint: `rename it to ${entry.trimEnd().replace(/\.(sql|ts)$/i, (ext) => ext.toLowerCase())}`,
          }),
        );
        continue;
      }
      const match = unitFilePattern.exec(entry);
      if (!match) {
        errors.push(
          new PlanError('is not named NNNN_name.sql or NNNN_name.ts', {
            code: 'unit-name-invalid',
            file,
            hint: 'unit files start with a numeric prefix that orders them, e.g. 0004_customers_organization.sql; a lower-case letter after the number places a unit between two others (0004a_...)',
          }),
        );
        continue;
      }
      found.push({
        file,
        absolutePath: join(root, file),
        id: entry.replace(/\.(sql|ts)$/, ''),
        prefix: BigInt(match[1] as string),
        letter: match[2] as string,
        name: match[3] as string,
        format: match[4] as 'sql' | 'ts',
        kind,
      });
    }
  }

  const forward = found.filter((f) => f.kind !== 'rollback');
  const byPrefix = new Map<string, FoundFile>();
  for (const f of forward) {
    const prefix = `${f.prefix}${f.letter}`;
    const other = byPrefix.get(prefix);
    if (other)
      errors.push(
        new PlanError(`has the same prefix ${prefix} as ${other.file}`, {
          code: 'unit-prefix-repeated',
          file: f.file,
          hint: 'every unit needs its own prefix: renumber one of them, or put a lower-case letter after the number to place one between two others (0007a_, 0007b_ run after 0007_ and before 0008_)',
        }),
      );
    else byPrefix.set(prefix, f);
  }
  const forwardIds = new Set(forward.map((f) => f.id));
  const rollbackById = new Map<string, FoundFile>();
  for (const r of found.filter((f) => f.kind === 'rollback')) {
    if (!forwardIds.has(r.id))
      errors.push(
        new PlanError(`reverts no unit: there is no migrations/${r.id}.* or backfills/${r.id}.*`, {
          code: 'rollback-orphan',
          file: r.file,
          hint: 'a rollback carries the file name of the unit it reverts',
        }),
      );
    else if (rollbackById.has(r.id))
      errors.push(new PlanError(`is a second rollback for ${r.id}`, { code: 'rollback-repeated', file: r.file }));
    else rollbackById.set(r.id, r);
  }

  const defaults = {
    // No lock timeout in the config: the safe default; `none`: no limit (undefined sets none).
    lockTimeoutMs: config.lockTimeout === undefined ? defaultLockTimeoutMs : (config.lockTimeout ?? undefined),
    statementTimeoutMs: config.statementTimeout,
    retries: config.retries,
  };
  const splits = openSplits();
  const units: Unit[] = [];
  const ordered = [...byPrefix.values()].sort(compareOrder);
  for (const [i, f] of ordered.entries()) {
    // Files are read synchronously: now and then the event loop gets a turn, so a
    // connection opened meanwhile (apply) makes progress while the plan loads.
    if (i % 16 === 15) await new Promise(setImmediate);
    try {
      const script = await withSqlParser(() => loadScript(f, defaults, splits));
      const rollbackFile = rollbackById.get(f.id);
      const rollback = rollbackFile ? await withSqlParser(() => loadScript(rollbackFile, defaults, splits)) : undefined;
      units.push({ ...script, prefix: f.prefix, letter: f.letter, name: f.name, kind: f.kind as UnitKind, rollback });
    } catch (error) {
      if (error instanceof PlanError) errors.push(error);
      else throw error;
    }
  }
  splits.save();
  if (errors.length > 0) throw new PlanErrors(errors);
  return units;
}

/**
 * Loads a file; when its SQL is not in the split cache, loads the parser (libpg-query's
 * WebAssembly, only when some text needs it) and loads the file again.
 */
async function withSqlParser<T>(load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (!(error instanceof SqlParserNeeded)) throw error;
    await loadSqlParser();
    return load();
  }
}

async function ensureDirectory(root: string): Promise<void> {
  try {
    if ((await stat(root)).isDirectory()) return;
  } catch {
    // reported below
  }
  throw new UsageError(`plan directory not found: ${root}`, {
    code: 'plan-dir-not-found',
    hint: 'pass --dir <plan directory>, or run `tenantify init` to scaffold one',
  });
}

async function loadScript(
  f: FoundFile,
  defaults: { lockTimeoutMs: number | undefined; statementTimeoutMs: number | undefined; retries: number },
  splits: Splits,
): Promise<Script> {
  const unreadable = (error: unknown): PlanError =>
    new PlanError(`cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      code: 'unit-unreadable',
      file: f.file,
      hint: 'check the file permissions',
    });
  const file = { id: f.id, file: f.file, absolutePath: f.absolutePath, format: f.format };
  if (f.format === 'sql') {
    const parsed = readSql(f, defaults, splits, unreadable);
    if (parsed.options.batch && f.kind === 'migration') {
      throw new PlanError('a batched unit moves data: it belongs in backfills/', { code: 'batch-not-backfill', file: f.file });
    }
    return { ...file, ...parsed, definition: undefined };
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(f.absolutePath);
  } catch (error) {
    throw unreadable(error);
  }
  const base = { ...file, checksum: checksum(bytes) };
  const definition = await importDefinition(f);
  return { ...base, fingerprint: base.checksum, ...fromDefinition(f.file, definition, defaults) };
}

async function importDefinition(f: FoundFile): Promise<UnitDefinition> {
  let mod: { default?: unknown };
  try {
    const { tsImport } = await runtimeImport('tsx/esm/api', () => import('tsx/esm/api'));
    await useRunningApiInUnits();
    mod = (await tsImport(f.absolutePath, import.meta.url)) as { default?: unknown };
  } catch (error) {
    const compile = compileError(error, f.absolutePath);
    if (compile) {
      const { text, location } = compile;
      const excerpt =
        location?.lineText === undefined
          ? []
          : [
              `${location.line} | ${location.lineText}`,
              `${' '.repeat(String(location.line).length)} | ${' '.repeat(location.column ?? 0)}^`,
            ];
      throw new PlanError(`does not compile: ${text}`, {
        file: f.file,
        line: location?.line,
        code: 'ts-compile-error',
        details: excerpt,
        hint: 'fix the TypeScript at that line; nothing was run',
      });
    }
    const stack = String((error as Error).stack ?? '');
    const where = new RegExp(`${escapeRegExp(f.absolutePath)}:(\\d+)`).exec(stack)?.[1];
    throw new PlanError(`cannot be loaded: ${(error as Error).message.split('\n')[0]}`, {
      code: 'ts-unit-invalid',
      file: f.file,
      line: where ? Number(where) : undefined,
    });
  }
  const definition = (mod.default as { default?: unknown } | undefined)?.default ?? mod.default;
  if (!isUnitDefinition(definition)) {
    throw new PlanError('must default-export defineUnit({...}) or defineBackfill({...}) from tenantify', {
      code: 'ts-unit-invalid',
      file: f.file,
    });
  }
  return definition;
}

/**
 * esbuild's first error when a TypeScript unit does not compile. tsx hands esbuild's
 * TransformError on, across its loader thread: only its message survives, "Transform failed
 * with 1 error:" then `file:line:column: ERROR: text` per error.
 */
function compileError(
  error: unknown,
  path: string,
): { text: string; location: { line: number; column?: number; lineText?: string } | undefined } | undefined {
  if ((error as Error).name !== 'TransformError') return undefined;
  const found = /^(.*):(\d+):(\d+): ERROR: (.*)$/m.exec((error as Error).message);
  if (!found)
    return {
      text: (error as Error).message.split('\n').slice(1).join(' ').trim() || 'esbuild could not transform it',
      location: undefined,
    };
  const line = Number(found[2]);
  let lineText: string | undefined;
  try {
    lineText = readFileSync(path, 'utf8').split('\n')[line - 1];
  } catch {
    // the excerpt is a help, not a need
  }
  return { text: found[4] ?? '', location: { line, column: Number(found[3]), ...(lineText === undefined ? {} : { lineText }) } };
}

function fromDefinition(
  file: string,
  d: UnitDefinition,
  defaults: { lockTimeoutMs: number | undefined; statementTimeoutMs: number | undefined; retries: number },
): Omit<Script, 'id' | 'file' | 'absolutePath' | 'format' | 'checksum'> {
  const duration = (value: string | undefined, name: string): number | undefined => {
    if (value === undefined) return undefined;
    const parsed = durationSchema.safeParse(value);
    if (!parsed.success)
      throw new PlanError(`bad ${name} "${value}": expected a duration like 500ms, 5s or 2min`, { code: 'config-invalid', file });
    return parsed.data;
  };
  const lockTimeout = (value: string): number | undefined => {
    const parsed = lockTimeoutSchema.safeParse(value);
    if (!parsed.success)
      throw new PlanError(`bad lockTimeout "${value}": expected ${parsed.error.issues[0]?.message ?? 'a duration'}`, {
        code: 'config-invalid',
        file,
      });
    return parsed.data ?? undefined;
  };
  const whole = (value: number | undefined, name: string, min: number, max: number): number | undefined => {
    if (value !== undefined && !(Number.isInteger(value) && value >= min && value <= max))
      throw new PlanError(`bad ${name} ${value}: expected a whole number from ${min} to ${max}`, { code: 'config-invalid', file });
    return value;
  };
  const snapshot: UnitOptions['snapshot'] =
    d.snapshot === undefined
      ? { kind: 'default' }
      : Array.isArray(d.snapshot)
        ? { kind: 'tables', tables: d.snapshot }
        : { kind: d.snapshot };
  const options: UnitOptions = {
    transaction: d.type === 'unit' ? d.transaction !== false : true,
    snapshot,
    lockTimeoutMs: d.lockTimeout === undefined ? defaults.lockTimeoutMs : lockTimeout(d.lockTimeout),
    statementTimeoutMs: duration(d.statementTimeout, 'statementTimeout') ?? defaults.statementTimeoutMs,
    retries: whole(d.retries, 'retries', 0, 100) ?? defaults.retries,
    batch: d.type === 'backfill' ? { table: d.table, key: d.key, size: whole(d.size, 'size', 1, maxBatchSize) ?? 10_000 } : undefined,
  };
  const checks = (section: 'precheck' | 'verify', list: { name: string; sql: string }[] | undefined) =>
    (list ?? []).map((c) => ({ section, name: c.name, sql: c.sql, line: 0 }));
  return {
    options,
    statements: [],
    prechecks: checks('precheck', d.precheck),
    verifies: checks('verify', d.verify),
    writes: d.writes ?? (d.type === 'backfill' ? [d.table] : []),
    definition: d,
  };
}

/**
 * A SQL unit's statements and checksum. A file too large to hold its statements (generated
 * INSERTs) is read as it goes, and its statements run from the file (sql-unit.ts).
 */
function readSql(
  f: FoundFile,
  defaults: { lockTimeoutMs: number | undefined; statementTimeoutMs: number | undefined; retries: number },
  splits: Splits,
  unreadable: (error: unknown) => PlanError,
): ParsedSql & { checksum: string } {
  if (fileSize(f.absolutePath) > streamedUnitBytes) {
    try {
      return readSqlUnit(f.file, f.absolutePath, defaults);
    } catch (error) {
      throw error instanceof PlanError || error instanceof SqlParserNeeded ? error : unreadable(error);
    }
  }
  let bytes: Buffer;
  try {
    // Read synchronously: a plan is hundreds of small files, and a promise per file costs more than the read.
    bytes = readFileSync(f.absolutePath);
  } catch (error) {
    throw unreadable(error);
  }
  // A BOM is not SQL: dropped, whatever the file starts with.
  const text = bytes
    .toString('utf8')
    .replace(/^\uFEFF/, '')
    .replace(/\r\n/g, '\n');
  return { ...parseSqlUnit(f.file, text, defaults, splits), checksum: checksum(bytes) };
}

/** The file's size in bytes; 0 when it cannot be read (the read says why). */
function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
