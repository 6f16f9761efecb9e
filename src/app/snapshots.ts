/** `snapshots list | restore | prune`: the pg_dump snapshots the ledger knows. */
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, withSession, type Session } from '../db/connection.js';
import { Ledger } from '../db/ledger.js';
import { withAdvisoryLock } from '../db/lock.js';
import { restoreSnapshot } from '../db/snapshot-restore.js';
import { snapshotDirectory, type SnapshotManifest } from '../db/snapshot.js';
import { isTenantifyError, UsageError } from '../errors.js';
import { loadConfig } from '../plan/config.js';

export interface SnapshotEntry extends SnapshotManifest {
  present: boolean;
}

export async function listSnapshots(options: { dir: string; url: string | undefined }): Promise<SnapshotEntry[]> {
  const config = await loadConfig(options.dir);
  return withSession(options.url, 'snapshots list', async (session) => {
    const ledger = new Ledger(session.db, config.ledgerSchema);
    if ((await ledger.exists()) === undefined) return [];
    return (await manifests(session, config.ledgerSchema)).map((m) => ({ ...m, present: existsSync(m.file) }));
  });
}

async function manifests(session: Session, schema: string): Promise<SnapshotManifest[]> {
  const result = await session.client.query<{ detail: SnapshotManifest }>(
    `SELECT detail FROM ${quote(schema)}.events WHERE event = 'snapshot_taken' ORDER BY id`,
  );
  return result.rows.map((r) => r.detail);
}

/** The latest snapshot of a unit, restored in one transaction, under the run lock. */
export async function restoreUnitSnapshot(options: {
  dir: string;
  url: string | undefined;
  unit: string;
  confirm: (manifest: SnapshotManifest) => Promise<boolean>;
}): Promise<SnapshotManifest | undefined> {
  const config = await loadConfig(options.dir);
  const session = await connect(options.url, 'snapshots restore');
  try {
    const ledger = new Ledger(session.db, config.ledgerSchema);
    return await withAdvisoryLock(session, ledger, async () => {
      const all = (await ledger.exists()) === undefined ? [] : await manifests(session, config.ledgerSchema);
      const manifest = all.filter((m) => m.unit === options.unit).pop();
      if (!manifest)
        throw new UsageError(`no snapshot of ${options.unit} in the ledger`, {
          code: 'snapshot-not-found',
          hint: '`tenantify snapshots list` shows the snapshots there are',
        });
      if (!(await options.confirm(manifest))) return undefined;
      const runId = await ledger.startRun('snapshots restore', { unit: options.unit, file: manifest.file });
      try {
        await restoreSnapshot(session, manifest);
      } catch (error) {
        const details = isTenantifyError(error) ? error.details : [];
        await ledger.event(runId, options.unit, 'snapshot_restore_failed', {
          file: manifest.file,
          tables: manifest.tables,
          message: (error as Error).message,
          details,
        });
        await ledger.finishRun(runId, 'failed', (error as { exitCode?: number }).exitCode ?? 1);
        throw error;
      }
      await ledger.event(runId, options.unit, 'snapshot_restored', { file: manifest.file, tables: manifest.tables, run: manifest.run });
      await ledger.finishRun(runId, 'done', 0);
      return manifest;
    });
  } finally {
    await session.close();
  }
}

/** Keeps the snapshots of the newest `keep` runs, removes the older run folders. */
export async function pruneSnapshots(options: { dir: string; keep: number }): Promise<{ removed: string[]; kept: string[] }> {
  const config = await loadConfig(options.dir);
  const root = snapshotDirectory(options.dir, config.snapshotDir);
  if (!existsSync(root)) return { removed: [], kept: [] };
  const runs = (await readdir(root, { withFileTypes: true }))
    .filter((e) => e.isDirectory() && /^\d+$/.test(e.name))
    .map((e) => e.name)
    .sort((a, b) => Number(b) - Number(a));
  const kept = runs.slice(0, options.keep);
  const removed = runs.slice(options.keep);
  for (const run of removed) await rm(join(root, run), { recursive: true, force: true });
  return { removed: removed.map((r) => join(root, r)), kept: kept.map((r) => join(root, r)) };
}

function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
