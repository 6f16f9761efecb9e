import { describe, expect, it } from 'vitest';
import { createdBy, dropStatements } from '../../src/plan/created.js';
import { connectionLost, isConnectionLost } from '../../src/exec/failure-report.js';

const parse = async (sql: string): Promise<Record<string, unknown>> => {
  const mod = await import('libpg-query');
  await mod.loadModule();
  return (mod.parseSync(sql) as { stmts: { stmt: Record<string, unknown> }[] }).stmts[0]?.stmt ?? {};
};

describe('what a unit created (rollback --from-snapshot drops it)', () => {
  it.each([
    ['CREATE TABLE orgs (id int)', { kind: 'TABLE', name: 'orgs' }],
    ['CREATE TABLE "Billing"."Org Units" (id int)', { kind: 'TABLE', name: '"Billing"."Org Units"' }],
    ['CREATE TABLE t2 AS SELECT 1 AS x', { kind: 'TABLE', name: 't2' }],
    ['CREATE MATERIALIZED VIEW mv AS SELECT 1 AS x', { kind: 'MATERIALIZED VIEW', name: 'mv' }],
    ['CREATE VIEW app.v AS SELECT 1 AS x', { kind: 'VIEW', name: 'app.v' }],
    ['CREATE SEQUENCE s', { kind: 'SEQUENCE', name: 's' }],
    ['CREATE INDEX hosts_org_idx ON app.hosts (org_id)', { kind: 'INDEX', name: 'app.hosts_org_idx' }],
  ])('%s', async (sql, expected) => {
    expect(createdBy(await parse(sql))).toEqual(expected);
  });

  it.each([
    'CREATE TABLE IF NOT EXISTS orgs (id int)',
    'CREATE OR REPLACE VIEW v AS SELECT 1',
    'CREATE INDEX ON hosts (org_id)',
    'ALTER TABLE hosts ADD COLUMN x int',
    'UPDATE hosts SET x = 1',
  ])('leaves alone what may have been there, or is not a new relation: %s', async (sql) => {
    expect(createdBy(await parse(sql))).toBeUndefined();
  });

  it('drops newest first, the views apart', () => {
    const drops = dropStatements([
      { kind: 'TABLE', name: 'orgs' },
      { kind: 'INDEX', name: 'hosts_org_idx' },
      { kind: 'VIEW', name: 'host_orgs' },
    ]);
    expect(drops).toEqual({
      views: ['DROP VIEW IF EXISTS host_orgs'],
      rest: ['DROP INDEX IF EXISTS hosts_org_idx', 'DROP TABLE IF EXISTS orgs'],
    });
  });
});

describe('a lost connection', () => {
  it('is told apart from a failed statement and from our own cancel', () => {
    expect(isConnectionLost(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).toBe(true);
    expect(isConnectionLost(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionLost(new Error('Client has encountered a connection error and is not queryable'))).toBe(true);
    expect(isConnectionLost(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isConnectionLost(Object.assign(new Error('canceling statement due to user request'), { code: '57014' }))).toBe(false);
    expect(isConnectionLost(Object.assign(new Error('relation "x" already exists'), { code: '42P07' }))).toBe(false);
  });

  it('says which unit, what the ledger says and how to go on', () => {
    const error = connectionLost(new Error('Connection terminated unexpectedly'), {
      unitId: '0003_fill',
      direction: 'apply',
      partial: true,
    });
    expect(error.exitCode).toBe(1);
    expect(error.message).toBe('lost the connection to PostgreSQL while applying 0003_fill: Connection terminated unexpectedly');
    expect(error.hint).toMatch(
      /what committed before it \(statements or batches\) stays done.*0003_fill stays `running` there\. Once the server is back, `tenantify apply` records this run as died and resumes 0003_fill/,
    );
    const revert = connectionLost(new Error('Connection terminated unexpectedly'), {
      unitId: '0003_fill',
      direction: 'revert',
      partial: false,
    });
    expect(revert.hint).toMatch(/0003_fill keeps its state there\. Once the server is back, `tenantify rollback` goes on/);
  });
});
