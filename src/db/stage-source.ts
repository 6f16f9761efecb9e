/**
 * `tenancy consolidate --from-databases`: one source database's tables streamed into a
 * staging schema of the target, with COPY at both ends (binary: the preflight proved the
 * types equal), in one repeatable-read snapshot of the source, so every table is read as of
 * one moment. pg-copy-streams carries the bytes; `pipeline` gives back-pressure, so memory
 * stays bounded whatever the size. Then the source is a schema of the target like any
 * other, and the unit's SQL copies it into the shared tables.
 *
 * Staging is all or nothing: a marker table is created once every table is in, and a run
 * that finds the staging schema without it starts the staging again (a second snapshot must
 * not be mixed with the first).
 *
 * The source's URL is read from the sources file when the unit runs: it is never written
 * into the plan, and every message that could carry it goes through redact().
 */
import { readFileSync } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { UnitContext } from '../plan/define.js';
import { redact } from './redact.js';
import { withTransaction } from './transaction.js';

export interface StageTable {
  table: string;
  columns: { name: string; type: string }[];
  primaryKey: string[];
}

export interface StageSourceOptions {
  /** The sources file (`name URL` per line), as a path or a file URL. */
  sources: string | URL;
  /** The source's name in that file. */
  source: string;
  /** The schema of the source database that holds its tables. */
  schema: string;
  /** The staging schema in the target. */
  stage: string;
  tables: StageTable[];
  /**
   * `--freeze`: the source's tables are locked IN EXCLUSIVE MODE before the snapshot is taken,
   * so the application's writes wait (reads go on) until every table is read, and the
   * snapshot holds every write committed before. The lock ends with the transaction, or with
   * the session if the run is killed: nothing is left to undo.
   */
  freeze?: boolean;
}

export interface SourceLine {
  name: string;
  url: string;
  line: number;
}

/** `name URL` or a bare URL (its database names it) per line; `#` starts a comment. */
export function parseSources(text: string): SourceLine[] {
  const lines: SourceLine[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) continue;
    const parts = line.split(/\s+/);
    const url = parts.length === 1 ? (parts[0] as string) : (parts[1] as string);
    const name = parts.length === 1 ? databaseOf(url) : (parts[0] as string);
    lines.push({ name, url, line: i + 1 });
  }
  return lines;
}

function databaseOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || url;
  } catch {
    return url;
  }
}

export async function stageSource(ctx: UnitContext, options: StageSourceOptions): Promise<{ rows: number; bytes: number }> {
  const target = ctx.client;
  const stage = ident(options.stage);
  const staged = await target.query<{ done: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS done`, [
    `${ident(options.stage)}.tenantify_staged`,
  ]);
  if (staged.rows[0]?.done) {
    ctx.log(`${options.source}: staged already (${options.stage})`);
    return { rows: 0, bytes: 0 };
  }
  await target.query(`DROP SCHEMA IF EXISTS ${stage} CASCADE`);
  await target.query(`CREATE SCHEMA ${stage}`);
  for (const t of options.tables) {
    await target.query(`CREATE TABLE ${stage}.${ident(t.table)} (${t.columns.map((c) => `${ident(c.name)} ${c.type}`).join(', ')})`);
  }

  const source = new pg.Client({ connectionString: sourceUrl(options), application_name: `tenantify consolidate ${options.source}` });
  source.on('error', () => {});
  try {
    await source.connect();
  } catch (error) {
    throw new Error(`cannot connect to the source ${options.source}: ${redact((error as Error).message)}`);
  }
  let rows = 0;
  let bytes = 0;
  try {
    // One snapshot for every table of the source (a lock stronger than ROW EXCLUSIVE cannot be taken READ ONLY).
    await withTransaction(source, { isolation: 'repeatable read', readOnly: !options.freeze }, async () => {
      if (options.freeze) {
        await source.query(`SET LOCAL lock_timeout = '10s'`);
        await source.query(
          `LOCK TABLE ${options.tables.map((t) => `${ident(options.schema)}.${ident(t.table)}`).join(', ')} IN EXCLUSIVE MODE`,
        );
        ctx.log(`${options.source}: frozen (its writes wait) while it is staged`);
      }
      for (const t of options.tables) {
        const started = performance.now();
        const columns = t.columns.map((c) => ident(c.name)).join(', ');
        const reader = source.query(
          copyTo(`COPY (SELECT ${columns} FROM ${ident(options.schema)}.${ident(t.table)}) TO STDOUT (FORMAT binary)`),
        );
        const writer = target.query(copyFrom(`COPY ${stage}.${ident(t.table)} (${columns}) FROM STDIN (FORMAT binary)`));
        let tableBytes = 0;
        const counter = new Transform({
          transform(chunk: Buffer, _encoding, done) {
            tableBytes += chunk.length;
            done(null, chunk);
          },
        });
        await pipeline(reader, counter, writer);
        const tableRows = Number(writer.rowCount ?? 0);
        rows += tableRows;
        bytes += tableBytes;
        ctx.log(`${options.source}.${t.table}: ${tableRows} rows, ${tableBytes} bytes in ${Math.round(performance.now() - started)} ms`);
      }
    });
  } catch (error) {
    throw new Error(`staging ${options.source}: ${redact((error as Error).message)}`);
  } finally {
    await source.end().catch(() => {});
  }
  // The copy statements read the staging tables by key ranges: each gets its primary key, then statistics.
  for (const t of options.tables) {
    if (t.primaryKey.length > 0)
      await target.query(`ALTER TABLE ${stage}.${ident(t.table)} ADD PRIMARY KEY (${t.primaryKey.map(ident).join(', ')})`);
    await target.query(`ANALYZE ${stage}.${ident(t.table)}`);
  }
  await target.query(
    `CREATE TABLE ${stage}.tenantify_staged AS SELECT clock_timestamp() AS staged_at, ${rows}::bigint AS rows, ${bytes}::bigint AS bytes`,
  );
  return { rows, bytes };
}

function sourceUrl(options: StageSourceOptions): string {
  const path =
    options.sources instanceof URL || String(options.sources).startsWith('file:')
      ? fileURLToPath(options.sources)
      : String(options.sources);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`the sources file ${path} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const line = parseSources(text).find((l) => l.name === options.source);
  if (!line) throw new Error(`${path} names no source ${options.source}`);
  return line.url;
}

function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
