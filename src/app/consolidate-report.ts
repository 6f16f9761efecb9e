/**
 * `apply --json` of a consolidation plan: one record per source copied by the run (its
 * tenant, its rows per shared table, its size, its time, its verify), beside the units.
 *
 * A source's unit names its source in one comment line (readSourceMarker): the tenant, the
 * key and the shared tables. The rows are counted once the run is over, in the tenant's rows
 * of each shared table (what its verify compared with the source); the time is the unit's,
 * plus, under `--parallel`, the source's copy in the `consolidate_copy` unit.
 */
import { readFile } from 'node:fs/promises';
import { withSession } from '../db/connection.js';
import { quoteIdent } from '../tenancy/sql-text.js';
import { readSourceMarker, type ConsolidateSourceMarker } from '../tenancy/consolidate/plan.js';
import type { ApplyResult } from './apply.js';

export interface ConsolidatedSourceRecord {
  source: string;
  tenantId: number;
  /** The source's own unit. */
  unit: string;
  /** Per shared table (copy order): the tenant's rows there after the run. */
  rows: Record<string, number>;
  totalRows: number;
  /** The source's tables on disk when the plan was written. */
  bytes: number;
  /** `--from-databases`: the bytes COPY carried from the source database (binary). */
  copyBytes?: number;
  /** The source's unit, and its copy in `consolidate_copy` when that unit ran it (`--parallel`). */
  seconds: number;
  /** Its verify: every table's row count and content hash equal the source's. */
  verify: { ok: boolean; checks: number };
}

/** The records of the consolidated sources the run applied (none for a dry run: it kept nothing). */
export async function consolidatedSources(url: string | undefined, result: ApplyResult): Promise<ConsolidatedSourceRecord[]> {
  if (result.dryRun) return [];
  const files = new Map(result.plan.entries.map((e) => [e.unit.id, e.unit.absolutePath]));
  const found: { report: ApplyResult['units'][number]; marker: ConsolidateSourceMarker }[] = [];
  for (const report of result.units.filter((u) => u.outcome === 'applied')) {
    const file = files.get(report.id);
    const marker = file === undefined ? undefined : readSourceMarker(await readFile(file, 'utf8'));
    if (marker) found.push({ report, marker });
  }
  if (found.length === 0) return [];
  const copyTimes = parallelCopyTimes(result);
  return withSession(url, 'apply (consolidated sources)', async ({ client }) => {
    const records: ConsolidatedSourceRecord[] = [];
    for (const { report, marker } of found) {
      const counts = marker.tables.map(
        ([schema, table]) =>
          `(SELECT count(*) FROM ${quoteIdent(schema)}.${quoteIdent(table)} WHERE ${quoteIdent(marker.key)} = $1)::bigint AS ${quoteIdent(table)}`,
      );
      const { rows } = await client.query<Record<string, string>>(`SELECT ${counts.join(', ')}`, [marker.tenantId]);
      const perTable = Object.fromEntries(Object.entries(rows[0] ?? {}).map(([table, n]) => [table, Number(n)]));
      let copyBytes: number | undefined;
      if (marker.stage) {
        const { rows: staged } = await client.query<{ bytes: string }>(
          `SELECT bytes::text FROM ${quoteIdent(marker.stage)}.tenantify_staged`,
        );
        copyBytes = staged[0] ? Number(staged[0].bytes) : undefined;
      }
      const verifies = report.checks.filter((c) => c.section === 'verify');
      records.push({
        source: marker.source,
        tenantId: marker.tenantId,
        unit: report.id,
        rows: perTable,
        totalRows: Object.values(perTable).reduce((n, x) => n + x, 0),
        bytes: marker.bytes,
        ...(copyBytes === undefined ? {} : { copyBytes }),
        seconds: Math.round(report.durationMs + (copyTimes.get(marker.tenantId) ?? 0)) / 1000,
        verify: { ok: verifies.every((c) => c.ok), checks: verifies.length },
      });
    }
    return records;
  });
}

/** `--parallel`: each source's copy time (ms) from the note of the `consolidate_copy` unit this run applied (copySources' records). */
function parallelCopyTimes(result: ApplyResult): Map<number, number> {
  const copy = result.units.find((u) => u.outcome === 'applied' && /_consolidate_copy$/.test(u.id) && u.note?.includes('['));
  if (!copy?.note) return new Map();
  const copied = JSON.parse(copy.note.slice(copy.note.indexOf('['))) as { tenantId: number; ms: number; skipped: boolean }[];
  return new Map(copied.filter((c) => !c.skipped).map((c) => [c.tenantId, c.ms]));
}
