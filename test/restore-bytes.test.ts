/**
 * A snapshot's restore gives the table back byte for byte: text whose 2-, 3- and 4-byte
 * characters straddle every chunk boundary of the stream from pg_restore to psql, bytea,
 * jsonb and arrays of text. And a restore that fails anywhere in that stream (pg_restore
 * dying half-way, psql failing after the data) changes nothing and says so.
 */
import { chmodSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { findPgTool } from '../src/db/pg-tools.js';
import { runCli } from './support/cli.js';
import { contentFingerprint, dropAfterAll, freshDatabase, query } from './support/db.js';
import { schemaDump } from './support/dump.js';
import { writePlan } from './support/plan-dir.js';

/**
 * 8,000 rows, ~7 MB of COPY text: a hundred pipe chunks and more. Every row's text is only
 * multi-byte characters in a mix of lengths (2, 3 and 4 bytes, and joined emoji), behind 0 to
 * 3 ASCII characters that shift the alignment from row to row: wherever a chunk ends inside a
 * text, jsonb or array value, it most often ends inside a character. `expected.mb` is the
 * untouched copy to compare against.
 */
const legacy = `
  CREATE TABLE mb (id int PRIMARY KEY, s text NOT NULL, b bytea, j jsonb, a text[]);
  INSERT INTO mb
  SELECT g, s, convert_to(s, 'UTF8') || '\\x00ff'::bytea || decode(md5(g::text), 'hex'),
         jsonb_build_object('名前', s, 'n', g, 'esc', E'"\\\\\\t/', 'list', jsonb_build_array(left(s, 5), '🙂', NULL)),
         ARRAY[left(s, g % 7), NULL, 'a"b\\c,{}', right(s, 3), '']
    FROM (
      SELECT g, repeat('x', g % 4)
                || (SELECT string_agg((ARRAY['é', '✓', '🙂', 'ß', '漢', '𝄞', 'Ж', '€', '𠜎', 'ǅ', '\uFEFF', '👩‍👩‍👧'])[1 + (g * 7 + i * i) % 12], '')
                      FROM generate_series(1, 20 + g % 41) i)
                || CASE WHEN g % 97 = 0 THEN E'\\t\\n\\\\\\r' ELSE '' END AS s
        FROM generate_series(1, 8000) g
    ) rows;
  CREATE TABLE notes (id int PRIMARY KEY, mb_id int NOT NULL CONSTRAINT notes_mb_fk REFERENCES mb (id));
  INSERT INTO notes SELECT g, g * 3 FROM generate_series(1, 100) g;
  CREATE SCHEMA expected;
  CREATE TABLE expected.mb AS TABLE mb;`;

/** The unit overwrites every column of every row, and adds one row. */
const plan = {
  'backfills/0001_overwrite.sql':
    "UPDATE mb SET s = 'x', b = '\\x00', j = '{}', a = '{}';\nINSERT INTO mb (id, s) VALUES (100001, 'new');\n",
};

/** Rows of mb that differ from expected.mb in any byte (text compared as its UTF-8 bytes, jsonb as its text). */
async function differingRows(url: string): Promise<number> {
  const [row] = await query<{ n: number }>(
    url,
    `SELECT count(*)::int AS n FROM mb m FULL JOIN expected.mb e USING (id)
      WHERE m.id IS NULL OR e.id IS NULL
         OR convert_to(m.s, 'UTF8') <> convert_to(e.s, 'UTF8') OR m.b IS DISTINCT FROM e.b
         OR m.j::text IS DISTINCT FROM e.j::text OR m.a::text IS DISTINCT FROM e.a::text`,
  );
  return row?.n ?? -1;
}

async function tableMd5(url: string, table: string): Promise<string> {
  const [row] = await query<{ md5: string }>(
    url,
    `SELECT md5(string_agg(convert_to(t::text, 'UTF8'), '\\x0a'::bytea ORDER BY id)) AS md5 FROM ${table} t`,
  );
  return row?.md5 ?? '';
}

async function replacementCharacters(url: string): Promise<number> {
  const [row] = await query<{ n: number }>(url, `SELECT count(*)::int AS n FROM mb t WHERE t::text LIKE '%' || chr(65533) || '%'`);
  return row?.n ?? -1;
}

/** A directory of PostgreSQL tools (for TENANTIFY_PG_BINDIR) whose pg_restore dies after `bytes` bytes of its output. */
function toolsWithDyingPgRestore(bytes: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'dying-pg-restore-'));
  for (const tool of ['pg_dump', 'psql'] as const) symlinkSync(findPgTool(tool)?.path as string, join(dir, tool));
  const real = findPgTool('pg_restore')?.path as string;
  writeFileSync(
    join(dir, 'pg_restore'),
    `#!/bin/sh\n[ "$1" = --version ] && exec '${real}' --version\n'${real}' "$@" | head -c ${bytes}\necho 'pg_restore: error: could not read from input file: end of file' >&2\nexit 1\n`,
  );
  chmodSync(join(dir, 'pg_restore'), 0o755);
  return dir;
}

describe('restore, byte for byte', () => {
  const dropped = dropAfterAll();
  let template = '';
  beforeAll(async () => {
    const db = dropped(await freshDatabase('mbtpl'));
    await query(db.url, legacy);
    template = db.name;
  });

  async function appliedDb(): Promise<{ url: string; dir: string }> {
    const { url } = dropped(await freshDatabase('mb', template));
    expect(await differingRows(url)).toBe(0);
    const dir = writePlan(plan);
    const applied = await runCli(['apply', '-d', url, '--dir', dir]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(await differingRows(url)).toBe(8001);
    return { url, dir };
  }

  it('snapshots restore gives back multi-byte text, bytea, jsonb and text[] exactly', async () => {
    const { url, dir } = await appliedDb();
    const restored = await runCli(['snapshots', 'restore', '0001_overwrite', '-d', url, '--dir', dir, '--yes']);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    expect(await replacementCharacters(url)).toBe(0);
    expect(await differingRows(url)).toBe(0);
    expect(await tableMd5(url, 'mb')).toBe(await tableMd5(url, 'expected.mb'));
    const [fk] = await query<{ def: string }>(
      url,
      "SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'notes_mb_fk'",
    );
    expect(fk?.def).toBe('FOREIGN KEY (mb_id) REFERENCES mb(id)');
  });

  it('rollback --from-snapshot takes the same path: the table exactly as before the unit', async () => {
    const { url, dir } = await appliedDb();
    const result = await runCli(['rollback', '--from-snapshot', '-d', url, '--dir', dir, '--yes']);
    expect(result.code).toBe(0);
    expect(await replacementCharacters(url)).toBe(0);
    expect(await differingRows(url)).toBe(0);
    expect(await tableMd5(url, 'mb')).toBe(await tableMd5(url, 'expected.mb'));
    const units = await query<{ status: string }>(url, "SELECT status FROM tenantify.units WHERE id = '0001_overwrite'");
    expect(units).toEqual([{ status: 'rolled_back' }]);
  });

  it('pg_restore dying half-way through the data: exit 1, the tables named, nothing changed, the ledger records it', async () => {
    const { url, dir } = await appliedDb();
    const schema = schemaDump(url);
    const content = await contentFingerprint(url);
    // 2 MB in: the table was dropped and created again, and its COPY is well under way.
    const bindir = toolsWithDyingPgRestore(2_000_000);
    const result = await runCli(['snapshots', 'restore', '0001_overwrite', '-d', url, '--dir', dir, '--yes'], {
      env: { TENANTIFY_PG_BINDIR: bindir },
    });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain('restoring the snapshot of 0001_overwrite (public.mb) failed');
    expect(result.stderr).toContain('pg_restore: error: could not read from input file');
    expect(result.stderr).toContain('nothing changed');
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack
    expect(schemaDump(url)).toBe(schema);
    expect(await contentFingerprint(url)).toEqual(content);
    expect(await differingRows(url)).toBe(8001);
    const [event] = await query<{ message: string }>(
      url,
      "SELECT detail->>'message' AS message FROM tenantify.events WHERE event = 'snapshot_restore_failed' AND unit_id = '0001_overwrite'",
    );
    expect(event?.message).toContain('restoring the snapshot of 0001_overwrite (public.mb) failed');
    const [run] = await query<{ outcome: string; exit_code: number }>(
      url,
      "SELECT outcome, exit_code FROM tenantify.runs WHERE command = 'snapshots restore'",
    );
    expect(run).toEqual({ outcome: 'failed', exit_code: 1 });

    const rollback = await runCli(['rollback', '--from-snapshot', '-d', url, '--dir', dir, '--yes'], {
      env: { TENANTIFY_PG_BINDIR: bindir },
    });
    expect(rollback.code).toBe(1);
    expect(rollback.stderr).toContain('restoring the snapshot of 0001_overwrite (public.mb) failed');
    expect(schemaDump(url)).toBe(schema);
    expect(await contentFingerprint(url)).toEqual(content);
    const [failed] = await query<{ message: string }>(
      url,
      "SELECT detail->>'message' AS message FROM tenantify.events WHERE event = 'rollback_failed' AND unit_id = '0001_overwrite'",
    );
    expect(failed?.message).toContain('pg_restore');
    const units = await query<{ status: string }>(url, "SELECT status FROM tenantify.units WHERE id = '0001_overwrite'");
    expect(units).toEqual([{ status: 'applied' }]);
  });

  it('psql failing after the data (a foreign key of another table no longer holds): exit 1, nothing changed, the ledger records it', async () => {
    const { url, dir } = await appliedDb();
    // A note on the row the unit added: the restored table does not have it, so notes_mb_fk cannot come back.
    await query(url, 'INSERT INTO notes VALUES (1000, 100001)');
    const schema = schemaDump(url);
    const content = await contentFingerprint(url);
    const result = await runCli(['snapshots', 'restore', '0001_overwrite', '-d', url, '--dir', dir, '--yes']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('restoring the snapshot of 0001_overwrite (public.mb) failed');
    expect(result.stderr).toContain('violates foreign key constraint "notes_mb_fk"');
    expect(result.stderr).toContain('nothing changed');
    expect(schemaDump(url)).toBe(schema);
    expect(await contentFingerprint(url)).toEqual(content);
    const [event] = await query<{ message: string }>(
      url,
      "SELECT detail->>'message' AS message FROM tenantify.events WHERE event = 'snapshot_restore_failed'",
    );
    expect(event?.message).toContain('0001_overwrite (public.mb)');
  });
});
