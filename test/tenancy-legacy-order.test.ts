/**
 * Scaffolded plans on legacy schemas, applied for real (issue 25, items 0 and 11): pgbench's
 * own schema upgraded while pgbench's TPC-B clients write through the whole apply, and a
 * table that reaches its tenant through two nullable parents, one of them filled later.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';

function plan(config: object): string {
  const dir = mkdtempSync(join(tmpdir(), 'legacy-order-'));
  writeFileSync(join(dir, 'tenantify.config.json'), `${JSON.stringify(config, null, 2)}\n`);
  return dir;
}

function run(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (code) => resolve({ code, output }));
  });
}

async function scaffold(url: string, dir: string) {
  const result = await runCli(['tenancy', 'scaffold', '-d', url, '--dir', dir, '--json']);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as { files: { unit: string }[] };
}

describe('scaffolded plans on legacy schemas', () => {
  const dropped = dropAfterAll();

  it("pgbench's schema is upgraded while TPC-B clients write through the whole apply, and none aborts", async () => {
    const db = dropped(await freshDatabase('pgb'));
    const init = await run('pgbench', ['-i', '--foreign-keys', '-s', '1', '-q', db.url]);
    expect(init.code, init.output).toBe(0);
    const dir = plan({ tenancy: { owner: 'pgbench_branches' } });
    const { files } = await scaffold(db.url, dir);
    const ids = files.map((f) => f.unit.slice(5));
    // history's trigger reads tellers' and accounts' key (its fallbacks): both columns come first.
    expect(ids.indexOf('pgbench_tellers_organization_id')).toBeLessThan(ids.indexOf('pgbench_history_organization_id'));
    expect(ids.indexOf('pgbench_accounts_organization_id')).toBeLessThan(ids.indexOf('pgbench_history_organization_id'));

    // TPC-B in rounds of a second, from before the apply starts until after it ends.
    const rounds: { code: number | null; output: string }[] = [];
    let applying = true;
    const workload = (async () => {
      while (applying || rounds.length === 0) rounds.push(await run('pgbench', ['-n', '-c', '2', '-T', '1', db.url]));
    })();
    await new Promise((r) => setTimeout(r, 300));
    const applied = await runCli(['apply', '-d', db.url, '--dir', dir, '--json']);
    applying = false;
    await workload;
    expect(applied.code, applied.stderr).toBe(0);
    for (const round of rounds) {
      expect(round.code, round.output).toBe(0);
      expect(round.output, round.output).not.toMatch(/aborted|ERROR/);
      expect(round.output).toMatch(/number of failed transactions: 0 /);
    }
    const [wrong] = await query<{ n: number }>(
      db.url,
      `SELECT count(*)::int AS n FROM pgbench_history h JOIN pgbench_branches b ON b.bid = h.bid WHERE h.organization_id IS DISTINCT FROM b.organization_id`,
    );
    expect(wrong?.n).toBe(0);
    const [written] = await query<{ n: number }>(db.url, 'SELECT count(*)::int AS n FROM pgbench_history');
    expect(written?.n).toBeGreaterThan(0);
  }, 120_000);

  describe('a table reached through two nullable parents', () => {
    // attachments and comments are both three hops from accounts; attachments sorts first. 30
    // attachments have a task, 20 only a comment, 5 neither.
    const legacy = `
      CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL);
      CREATE TABLE projects (id serial PRIMARY KEY, account_id int NOT NULL REFERENCES accounts);
      CREATE TABLE tasks (id serial PRIMARY KEY, project_id int NOT NULL REFERENCES projects);
      CREATE TABLE comments (id serial PRIMARY KEY, task_id int NOT NULL REFERENCES tasks, body text);
      CREATE TABLE attachments (id serial PRIMARY KEY, task_id int REFERENCES tasks, comment_id int REFERENCES comments, name text);
      INSERT INTO accounts (name) SELECT 'a' || g FROM generate_series(1, 3) g;
      INSERT INTO projects (account_id) SELECT 1 + g % 3 FROM generate_series(1, 6) g;
      INSERT INTO tasks (project_id) SELECT 1 + g % 6 FROM generate_series(1, 12) g;
      INSERT INTO comments (task_id, body) SELECT 1 + g % 12, 'c' FROM generate_series(1, 24) g;
      INSERT INTO attachments (task_id, name) SELECT 1 + g % 12, 'on a task' FROM generate_series(1, 30) g;
      INSERT INTO attachments (comment_id, name) SELECT 1 + g % 24, 'on a comment' FROM generate_series(1, 20) g;
      INSERT INTO attachments (name) SELECT 'loose' FROM generate_series(1, 5) g;
    `;
    const keyOfPath = `
      SELECT count(*)::int AS n FROM attachments a
        LEFT JOIN comments c ON c.id = a.comment_id
        JOIN tasks t ON t.id = COALESCE(a.task_id, c.task_id) JOIN projects p ON p.id = t.project_id JOIN accounts o ON o.id = p.account_id
       WHERE a.organization_id IS NOT DISTINCT FROM o.organization_id`;

    async function upgraded() {
      const db = dropped(await freshDatabase('att'));
      await query(db.url, legacy);
      const dir = plan({ tenancy: { owner: 'accounts', tables: { attachments: { unresolved: 'keep' } } } });
      await scaffold(db.url, dir);
      const applied = await runCli(['apply', '-d', db.url, '--dir', dir, '--json']);
      expect(applied.code, applied.stderr).toBe(0);
      return { url: db.url, dir };
    }

    it('scaffolding again into the same plan writes only what is missing, and says so (exit 0)', async () => {
      const db = dropped(await freshDatabase('att'));
      await query(db.url, legacy);
      const dir = plan({ tenancy: { owner: 'accounts', tables: { attachments: { unresolved: 'keep' } } } });
      const first = await scaffold(db.url, dir);
      const listing = () =>
        ['migrations', 'backfills', 'rollbacks'].flatMap((d) => readdirSync(join(dir, d)).map((f) => `${d}/${f}`)).sort();
      const before = listing();
      const again = await runCli(['tenancy', 'scaffold', '-d', db.url, '--dir', dir, '--json']);
      expect(again.code, again.stderr).toBe(0);
      const doc = JSON.parse(again.stdout) as { files: unknown[]; present: { unit: string }[] };
      expect(doc.files).toEqual([]);
      expect(doc.present.map((p) => p.unit)).toEqual(first.files.map((f) => f.unit));
      expect(listing()).toEqual(before);
      const human = await runCli(['tenancy', 'scaffold', '-d', db.url, '--dir', dir]);
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(new RegExp(`nothing to write: ${first.files.length} units of the scaffold already in the plan`));

      // One unit removed (with its rollback): only it is written again, numbered after the plan's last.
      const gone = first.files.find((f) => f.unit.endsWith('_backfill_comments_organization_id'))?.unit as string;
      rmSync(join(dir, 'backfills', `${gone}.sql`));
      rmSync(join(dir, 'rollbacks', `${gone}.sql`));
      const third = await scaffold(db.url, dir);
      expect(third.files.map((f) => f.unit)).toEqual([
        `${String(first.files.length + 1).padStart(4, '0')}_backfill_comments_organization_id`,
      ]);
    });

    it('is backfilled after both: the 20 attachments that have only a comment get its tenant', async () => {
      const { url } = await upgraded();
      expect((await query<{ n: number }>(url, keyOfPath))[0]?.n).toBe(50);
      expect((await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM attachments WHERE organization_id IS NULL'))[0]?.n).toBe(5);
    });

    it('its verify counts rows left without a key that lead to an owner, even when their parent has no key either', async () => {
      const { url, dir } = await upgraded();
      // What a backfill run before the comments' left behind: the comment and its attachments without a key.
      await query(
        url,
        `ALTER TABLE comments ALTER COLUMN organization_id DROP NOT NULL;
                        UPDATE comments SET organization_id = NULL;
                        UPDATE attachments SET organization_id = NULL WHERE comment_id IS NOT NULL`,
      );
      const result = await runCli(['verify', '-d', url, '--dir', dir, '--json']);
      expect(result.code).toBe(3);
      const doc = JSON.parse(result.stdout) as { checks: { unit: string; ok: boolean; violations: number }[] };
      const attachments = doc.checks.find((c) => c.unit.endsWith('_backfill_attachments_organization_id'));
      expect(attachments).toMatchObject({ ok: false, violations: 20 });
    });

    it("the key trigger: a re-parented row follows its parent; a key the app sets stands only if it is the parent's, else the write is refused", async () => {
      const { url } = await upgraded();
      const tenantOf = async (sql: string): Promise<unknown> => (await query<{ k: unknown }>(url, sql))[0]?.k;
      // Attachment 1 is on task 2; task 3 is in another tenant.
      const [mine, theirs] = [
        await tenantOf('SELECT organization_id AS k FROM tasks WHERE id = 2'),
        await tenantOf('SELECT organization_id AS k FROM tasks WHERE id = 3'),
      ];
      expect(mine).not.toBe(theirs);
      await query(url, 'UPDATE attachments SET task_id = 3 WHERE id = 1');
      expect(await tenantOf('SELECT organization_id AS k FROM attachments WHERE id = 1')).toBe(theirs);
      await query(url, `UPDATE attachments SET task_id = 2, organization_id = ${String(mine)} WHERE id = 1`);
      expect(await tenantOf('SELECT organization_id AS k FROM attachments WHERE id = 1')).toBe(mine);
      // Re-parented with a key (changed by the app) that is not the new parent's: refused, the row as it was.
      const third = await tenantOf('SELECT organization_id AS k FROM tasks WHERE id = 1');
      expect(new Set([mine, theirs, third]).size).toBe(3);
      const refused = await query(url, `UPDATE attachments SET task_id = 3, organization_id = ${String(third)} WHERE id = 1`).catch(
        (e: { code?: string }) => e,
      );
      expect((refused as { code?: string }).code).toBe('23514');
      expect(await query(url, 'SELECT task_id, organization_id FROM attachments WHERE id = 1')).toEqual([
        { task_id: 2, organization_id: mine },
      ]);
      const inserted = await query(url, `INSERT INTO attachments (task_id, organization_id, name) VALUES (3, ${String(mine)}, 'x')`).catch(
        (e: { code?: string }) => e,
      );
      expect((inserted as { code?: string }).code).toBe('23514');
      await query(url, `INSERT INTO attachments (task_id, organization_id, name) VALUES (3, ${String(theirs)}, 'y')`);
      expect(await tenantOf("SELECT organization_id AS k FROM attachments WHERE name = 'y'")).toBe(theirs);
    });
  });
});
