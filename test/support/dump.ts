/** The schema as pg_dump prints it, to compare a database before an apply and after its rollback. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { findPostgresBinaries } from '../../src/db/throwaway.js';

function pgDumpPath(): string {
  const bin = findPostgresBinaries()?.bin;
  return bin && existsSync(join(bin, 'pg_dump')) ? join(bin, 'pg_dump') : 'pg_dump';
}

/**
 * `pg_dump --schema-only` without the ledger's schema. pg_dump 15.14+ wraps its output in
 * `\restrict KEY` / `\unrestrict KEY` with a random key per run: those lines are dropped.
 */
export function schemaDump(url: string, ledgerSchema = 'tenantify'): string {
  const out = spawnSync(pgDumpPath(), ['--schema-only', `--exclude-schema=${ledgerSchema}`, '-d', url], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`pg_dump failed: ${out.stderr}`);
  return out.stdout
    .split('\n')
    .filter((line) => !/^\\(un)?restrict /.test(line))
    .join('\n');
}
