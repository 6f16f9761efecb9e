/**
 * Snapshots: pg_dump dumps taken before a unit runs (snapshot-take.ts), and their exact
 * restore (snapshot-restore.ts). What both sides share: the manifest the ledger keeps, where
 * the files live, and the check that a file is still the one that was taken.
 *
 * A unit's snapshot holds the existing tables it writes (or what its `snapshot` directive
 * names), in pg_dump's custom format (directory format with parallel jobs for big tables),
 * under <snapshotDir>/<run>/<unit>.dump, owner-only. Its manifest (tables, bytes, sha256,
 * versions, duration) goes to the ledger.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.js';

export interface SnapshotManifest {
  unit: string;
  run: number;
  scope: 'tables' | 'schema' | 'full';
  tables: string[];
  file: string;
  format: 'custom' | 'directory';
  bytes: number;
  sha256: string;
  pgDumpVersion: string;
  serverVersion: string;
  durationMs: number;
  takenAt: string;
  /** The tables Citus manages among `tables`, as they were: restored in place (citus.ts). */
  citus?: Record<string, CitusTable>;
}

/** Where a plan's snapshots live: TENANTIFY_SNAPSHOT_DIR, else the config's snapshotDir, relative to the plan directory. */
export function snapshotDirectory(planDirectory: string, configured: string): string {
  return resolve(planDirectory, process.env['TENANTIFY_SNAPSHOT_DIR'] || configured);
}

/** sha256 and size of a dump file, or of a directory-format dump's files in name order. */
export async function fingerprint(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const info = await stat(path);
  const files = info.isDirectory() ? (await readdir(path)).sort().map((f) => join(path, f)) : [path];
  for (const file of files) {
    for await (const chunk of createReadStream(file)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Refuses a snapshot whose file is missing or does not match its recorded sha256. */
export async function ensureIntact(manifest: SnapshotManifest): Promise<void> {
  let actual: { sha256: string };
  try {
    actual = await fingerprint(manifest.file);
  } catch {
    throw new UsageError(`the snapshot of ${manifest.unit} is missing: ${manifest.file}`, {
      code: 'snapshot-missing',
      hint: 'nothing was restored; restore from another backup, or revert with the rollback file (without --from-snapshot)',
    });
  }
  if (actual.sha256 !== manifest.sha256) {
    throw new UsageError(
      `the snapshot of ${manifest.unit} is corrupt: ${manifest.file} has sha256 ${actual.sha256.slice(0, 16)}..., the ledger recorded ${manifest.sha256.slice(0, 16)}...`,
      {
        code: 'snapshot-corrupt',
        hint: 'nothing was restored; restore from another backup, or revert with the rollback file (without --from-snapshot)',
      },
    );
  }
}

/** A table Citus manages, as a snapshot's manifest records it. */
export interface CitusTable {
  kind: 'distributed' | 'reference' | 'local';
  /** `name type` of each column, in order: the rows of the snapshot fit these. */
  columns: string[];
  bytes: number;
}
