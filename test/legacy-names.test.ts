/**
 * The names fixture (fixtures/legacy-names): a legacy schema with the names real databases
 * carry goes through analyze, scaffold, plan, apply, check and `rollback --all`, and comes
 * back exactly (schema and content of every schema); the canary table is never touched.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';

const fixture = readFileSync(new URL('../fixtures/legacy-names/legacy.sql', import.meta.url), 'utf8');
const ascii63 = `tbl_${'x'.repeat(59)}`;
const multiByte63 = `${'ä'.repeat(31)}x`;

/** Schema and data of every schema but the ledger, rows of each COPY in order (an updated row moves in the heap). */
function dump(url: string): string {
  const out = spawnSync('pg_dump', ['-d', url, '-N', 'tenantify', '--no-owner'], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(out.stderr);
  const result: string[] = [];
  let rows: string[] | undefined;
  for (const line of out.stdout.split('\n').filter((l) => !/^\\(un)?restrict /.test(l))) {
    if (rows && line === '\\.') {
      result.push(...rows.sort(), line);
      rows = undefined;
    } else if (rows) rows.push(line);
    else {
      result.push(line);
      if (/^COPY .* FROM stdin;$/.test(line)) rows = [];
    }
  }
  return result.join('\n');
}

function planDir(tenancy: object): string {
  const dir = mkdtempSync(join(tmpdir(), 'legacy-names-'));
  writeFileSync(join(dir, 'tenantify.config.json'), `${JSON.stringify({ tenancy }, null, 2)}\n`);
  return dir;
}

describe('legacy names, end to end', () => {
  const dropped = dropAfterAll();

  it('analyze, scaffold, plan, apply, check and rollback --all, exactly; the canary survives', async () => {
    const { url } = dropped(await freshDatabase('names'));
    await query(url, fixture);
    const before = dump(url);
    const canary = await query(url, 'SELECT * FROM canary ORDER BY id');
    const model = {
      owner: 'accounts',
      tables: { '"Order"': { unresolved: 'delete' }, '"order"': { unresolved: 'delete' }, '"my.schema".t': { via: ['account_id'] } },
    };
    const dir = planDir(model);

    // analyze: the dotted schema's table is a tenant table, its decoy global; --json has every path.
    const analyzed = await runCli(['tenancy', 'analyze', '-d', url, '--dir', dir, '--json']);
    expect(analyzed.code, analyzed.stderr).toBe(0);
    const doc = JSON.parse(analyzed.stdout) as { tables: { table: string; role: string; unresolved?: number; fallbacks?: unknown[] }[] };
    const role = (name: string) => doc.tables.find((t) => t.table === name)?.role;
    expect(role('"my.schema".t')).toBe('tenant');
    expect(role('my.schema.t')).toBe('global');
    expect(role('public.canary')).toBe('global');
    for (const name of [
      'public.Order',
      'public.order',
      'public.Customer Accounts',
      'public.select',
      'public.semi;colon "quoted"',
      `public.${ascii63}`,
      `public.${multiByte63}`,
      'sales.invoices',
    ])
      expect(role(name), name).toBe('tenant');
    expect(doc.tables.find((t) => t.table === 'public.Order')?.unresolved).toBe(1);
    expect(doc.tables.find((t) => t.table === 'public.order')?.unresolved).toBe(1);

    const scaffolded = await runCli(['tenancy', 'scaffold', '-d', url, '--dir', dir, '--json']);
    expect(scaffolded.code, scaffolded.stderr).toBe(0);
    const files = readdirSync(join(dir, 'backfills'));
    expect(files.filter((f) => /delete_unresolved/.test(f))).toHaveLength(2);
    // Every unit has a name of its own, not only a number: "Order"'s carry a hash of its name beside order's.
    const unitNames = ['migrations', 'backfills'].flatMap((d) => readdirSync(join(dir, d)).map((f) => f.replace(/^\d+[a-z]?_/, '')));
    expect(unitNames.filter((n, i) => unitNames.indexOf(n) !== i)).toEqual([]);
    expect(unitNames).toContain('order_delete_unresolved.sql');
    expect(unitNames.filter((n) => /^order_[0-9a-f]{8}_delete_unresolved\.sql$/.test(n))).toHaveLength(1);
    expect(
      readFileSync(join(dir, 'backfills', files.find((f) => /customer_accounts/.test(f) && /backfill/.test(f)) as string), 'utf8'),
    ).toContain('-- tenantify:batch public."Customer Accounts" key="Customer ID" size=5000');

    const planned = await runCli(['plan', '-d', url, '--dir', dir]);
    expect(planned.code, planned.stderr).toBe(0);
    const applied = await runCli(['apply', '-d', url, '--dir', dir, '--json']);
    expect(applied.code, applied.stderr + applied.stdout.slice(-3000)).toBe(0);
    // The twins' deleted rows are kept apart, each in its own table.
    expect(await query(url, 'SELECT id FROM tenantify_scaffold."Order_unresolved"')).toEqual([{ id: 5 }]);
    expect(await query(url, 'SELECT id FROM tenantify_scaffold.order_unresolved')).toEqual([{ id: 2 }]);
    // Every generated name fits 63 bytes and none is the table's own.
    const names = await query<{ name: string }>(
      url,
      `SELECT relname::text AS name FROM pg_class WHERE relkind = 'i' AND relname::text LIKE 'ää%'`,
    );
    expect(names.length).toBeGreaterThan(0);
    for (const { name } of names) expect(name).not.toBe(multiByte63);
    expect(await query(url, 'SELECT id, organization_id FROM my."schema.t"').catch((e: Error) => e.message)).toMatch(/organization_id/);

    const checked = await runCli(['tenancy', 'check', '-d', url, '--dir', dir, '--json']);
    const findings = (JSON.parse(checked.stdout) as { findings: { rule: string; level: string; table: string }[] }).findings;
    expect(
      findings.filter((f) => f.level === 'error'),
      checked.stderr,
    ).toEqual([]);
    expect(checked.code).toBe(0);
    // Piped, the human form never cuts a long name (its warnings name every table).
    const piped = await runCli(['tenancy', 'check', '-d', url, '--dir', dir]);
    expect(piped.code).toBe(0);
    expect(piped.stdout).toContain(ascii63);
    expect(piped.stdout).toContain(multiByte63);

    const rolledBack = await runCli(['rollback', '-d', url, '--dir', dir, '--all', '--yes', '--json']);
    expect(rolledBack.code, rolledBack.stderr).toBe(0);
    expect(dump(url)).toBe(before);
    expect(await query(url, 'SELECT * FROM canary ORDER BY id')).toEqual(canary);
  });

  it('a key column that exists with another type: analyze and scaffold exit 2 with its code, nothing written', async () => {
    const { url } = dropped(await freshDatabase('names'));
    await query(
      url,
      'CREATE TABLE accounts (id bigint PRIMARY KEY); CREATE TABLE "Task Items" (id int PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts, organization_id text);',
    );
    const before = dump(url);
    const dir = planDir({ owner: 'accounts' });
    for (const command of ['analyze', 'scaffold']) {
      const result = await runCli(['tenancy', command, '-d', url, '--dir', dir, '--json']);
      expect(result.code).toBe(2);
      expect(JSON.parse(result.stdout)).toMatchObject({ error: { code: 'tenant-key-type-mismatch', exitCode: 2 } });
    }
    expect(readdirSync(dir)).toEqual(['tenantify.config.json']);
    expect(dump(url)).toBe(before);
  });

  it('a transaction-off unit whose index name was taken fails its verify, and runs again once the name is fixed', async () => {
    const { url } = dropped(await freshDatabase('names'));
    await query(url, 'CREATE TABLE "Order" (id int PRIMARY KEY, k int)');
    const unit = (name: string) =>
      `-- tenantify:transaction off\nCREATE INDEX CONCURRENTLY IF NOT EXISTS ${name} ON "Order" (k);\n\n-- tenantify:verify the index on k exists\nSELECT 'missing' AS problem WHERE NOT EXISTS (SELECT FROM pg_index WHERE indrelid = '"Order"'::regclass AND indkey[0] = 2);\n`;
    // IF NOT EXISTS finds the table of that name and skips the build.
    const dir = mkdtempSync(join(tmpdir(), 'legacy-names-'));
    const file = join(dir, 'migrations', '0001_order_k_idx.sql');
    mkdirSync(join(dir, 'migrations'));
    writeFileSync(file, unit('"Order"'));
    const failed = await runCli(['apply', '-d', url, '--dir', dir, '--json']);
    expect(failed.code).toBe(3);
    const error = (JSON.parse(failed.stdout) as { error: { code: string; hint: string } }).error;
    expect(error.code).toBe('violations');
    expect(error.hint).toContain('edit migrations/0001_order_k_idx.sql');
    writeFileSync(file, unit('"Order_k_idx"'));
    const again = await runCli(['apply', '-d', url, '--dir', dir]);
    expect(again.code, again.stderr).toBe(0);
    expect(
      await query(
        url,
        'SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = \'"Order"\'::regclass AND NOT indisprimary',
      ),
    ).toEqual([{ name: '"Order_k_idx"' }]);
  });
});
