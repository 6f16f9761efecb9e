import Table from 'cli-table3';
import { listSnapshots, pruneSnapshots, restoreUnitSnapshot } from '../../app/snapshots.js';
import { UsageError } from '../../errors.js';
import { confirmDestructive } from '../../ui/confirm.js';
import { createOutput } from '../../ui/output.js';
import type { CommonOptions } from '../common.js';
import { requireDatabase } from '../target.js';

interface SnapshotsOptions extends CommonOptions {
  keep?: number;
  yes?: boolean;
}

export default async function snapshots(options: SnapshotsOptions, args: string[]): Promise<number> {
  const [action = 'list', unit] = args;
  const out = createOutput(options);
  if (action === 'list') {
    const entries = await listSnapshots({ dir: options.dir, url: requireDatabase(options) });
    if (out.json) {
      out.result({ snapshots: entries });
      return 0;
    }
    if (entries.length === 0) {
      out.line('No snapshots recorded in the ledger.');
      return 0;
    }
    const table = new Table({
      head: ['run', 'unit', 'scope', 'tables', 'size', 'taken at', 'file'].map((h) => out.style.bold(h)),
      style: { head: [], border: [] },
    });
    for (const e of entries) {
      const file = e.present ? e.file : out.style.red(`${e.file} (missing)`);
      table.push([
        String(e.run),
        e.unit,
        e.scope,
        e.tables.join(', '),
        `${(e.bytes / 1024).toFixed(1)} KiB`,
        e.takenAt.replace('T', ' ').slice(0, 19),
        file,
      ]);
    }
    out.line(table.toString());
    return 0;
  }
  if (action === 'restore') {
    if (!unit)
      throw new UsageError('snapshots restore needs the unit whose snapshot to restore', {
        code: 'argument-missing',
        hint: 'tenantify snapshots restore <unit id> (see `tenantify snapshots list`)',
      });
    const restored = await restoreUnitSnapshot({
      dir: options.dir,
      url: requireDatabase(options),
      unit,
      confirm: (m) =>
        confirmDestructive({
          yes: Boolean(options.yes),
          question: `Restore ${m.tables.length > 0 ? m.tables.join(', ') : `the ${m.scope} database`} as they were before ${m.unit} (run ${m.run})? Their current content is replaced.`,
          refusal: `snapshots restore replaces the content of ${m.tables.join(', ') || 'the database'}: it needs --yes without a terminal`,
        }),
    });
    if (!restored) {
      out.line('Nothing restored.');
      return 0;
    }
    if (out.json) out.result({ restored: { unit: restored.unit, run: restored.run, tables: restored.tables, file: restored.file } });
    else
      out.line(
        out.style.green(
          `Restored ${restored.tables.join(', ') || restored.scope} from ${restored.file}. The ledger still lists ${restored.unit} as applied: \`tenantify rollback --from-snapshot\` reverts units.`,
        ),
      );
    return 0;
  }
  if (action === 'prune') {
    if (!options.keep)
      throw new UsageError('snapshots prune needs --keep N', {
        code: 'argument-missing',
        hint: 'tenantify snapshots prune --keep 3 keeps the snapshots of the newest 3 runs',
      });
    const result = await pruneSnapshots({ dir: options.dir, keep: options.keep });
    if (out.json) out.result(result);
    else
      out.line(
        `Removed ${result.removed.length} run folder${result.removed.length === 1 ? '' : 's'} of snapshots; kept ${result.kept.length}.`,
      );
    return 0;
  }
  throw new UsageError(`unknown snapshots action "${action}"`, {
    code: 'unknown-action',
    hint: 'use list, restore <unit> or prune --keep N',
  });
}
