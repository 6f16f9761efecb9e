import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { contentFingerprint, dropAfterAll, freshDatabase, query } from './support/db.js';
import { schemaDump } from './support/dump.js';
import { writePlan } from './support/plan-dir.js';

describe('rollback --from-snapshot of a unit that created objects', () => {
  const dropLater = dropAfterAll();

  it('drops what the unit created: the schema is the one before it, and apply runs it again', async () => {
    const db = dropLater(await freshDatabase('snapcreated'));
    await query(
      db.url,
      "CREATE TABLE hosts (id int PRIMARY KEY, name text); INSERT INTO hosts SELECT g, 'h' || g FROM generate_series(1, 20) g;",
    );
    // No rollback file: the snapshot (of hosts, which it writes) is the way back.
    const dir = writePlan({
      'migrations/0001_base.sql': 'CREATE TABLE base (id int);\n',
      'migrations/0002_orgs.sql': [
        'CREATE TABLE orgs (id int PRIMARY KEY, name text);',
        "INSERT INTO orgs VALUES (1, 'first');",
        'CREATE SEQUENCE org_numbers;',
        'ALTER TABLE hosts ADD COLUMN org_id int REFERENCES orgs;',
        'UPDATE hosts SET org_id = 1;',
        'CREATE INDEX hosts_org_idx ON hosts (org_id);',
        'CREATE VIEW host_orgs AS SELECT h.id, o.name FROM hosts h JOIN orgs o ON o.id = h.org_id;',
        '',
      ].join('\n'),
    });
    const base = await runCli(['apply', '--to', '0001_base', '--dir', dir, '-d', db.url]);
    expect(base.code, base.stderr).toBe(0);
    const schema = schemaDump(db.url);
    const content = await contentFingerprint(db.url);
    const applied = await runCli(['apply', '--dir', dir, '-d', db.url]);
    expect(applied.code, applied.stderr).toBe(0);

    const rollback = await runCli(['rollback', '--from-snapshot', '--to', '0001_base', '--dir', dir, '-d', db.url, '--yes']);
    expect(rollback.code, rollback.stderr).toBe(0);
    expect(schemaDump(db.url)).toBe(schema);
    expect(await contentFingerprint(db.url)).toEqual(content);
    const [event] = await query<{ dropped: string[] }>(
      db.url,
      "SELECT detail->'dropped' AS dropped FROM tenantify.events WHERE event = 'rolled_back' AND unit_id = '0002_orgs'",
    );
    expect(event?.dropped).toEqual([
      'DROP VIEW IF EXISTS host_orgs',
      'DROP INDEX IF EXISTS hosts_org_idx',
      'DROP SEQUENCE IF EXISTS org_numbers',
      'DROP TABLE IF EXISTS orgs',
    ]);

    const again = await runCli(['apply', '--dir', dir, '-d', db.url]);
    expect(again.code, again.stderr).toBe(0);
    const [row] = await query<{ n: number }>(db.url, 'SELECT count(*)::int AS n FROM host_orgs');
    expect(row?.n).toBe(20);
  });
});
