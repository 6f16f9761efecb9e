import { describe, expect, it } from 'vitest';
import { planRun } from '../../src/plan/planner.js';
import { row, statement, unit } from '../support/builders.js';

const ids = (entries: { unit: { id: string } }[]) => entries.map((e) => e.unit.id);

describe('planRun', () => {
  const units = [unit('0001_a'), unit('0002_b'), unit('0003_c')];

  it('runs every unit of an empty ledger, in order', () => {
    const plan = planRun(units, []);
    expect(ids(plan.toRun)).toEqual(['0001_a', '0002_b', '0003_c']);
    expect(plan.entries.map((e) => e.status)).toEqual(['pending', 'pending', 'pending']);
  });

  it('skips applied units and runs the rest', () => {
    const plan = planRun(units, [row('0001_a')]);
    expect(ids(plan.toRun)).toEqual(['0002_b', '0003_c']);
  });

  it('stops after --to', () => {
    expect(ids(planRun(units, [], { to: '0002_b' }).toRun)).toEqual(['0001_a', '0002_b']);
    expect(planRun(units, [row('0001_a'), row('0002_b')], { to: '0002_b' }).toRun).toEqual([]);
  });

  it('refuses an unknown --to', () => {
    expect(() => planRun(units, [], { to: '0009_nope' })).toThrow(/--to 0009_nope: no such unit/);
  });

  it('runs failed, rolled back and abandoned units again', () => {
    const plan = planRun(units, [
      row('0001_a', { status: 'failed' }),
      row('0002_b', { status: 'rolled_back' }),
      row('0003_c', { status: 'running' }),
    ]);
    expect(ids(plan.toRun)).toEqual(['0001_a', '0002_b', '0003_c']);
    expect(plan.entries.every((e) => e.resume.kind === 'start')).toBe(true);
    expect(plan.entries[2]?.warnings.join()).toMatch(/left running by a run that died/);
  });

  it('marks an applied unit whose checksum changed as drift', () => {
    const plan = planRun(units, [row('0001_a', { checksum: 'sum:old' })]);
    expect(ids(plan.drifted)).toEqual(['0001_a']);
    expect(plan.drifted[0]?.driftReason).toMatch(/applied with checksum/);
  });

  it('does not call a failed transactional unit whose file was fixed drift', () => {
    expect(planRun(units, [row('0001_a', { status: 'failed', checksum: 'sum:old' })]).drifted).toEqual([]);
  });

  it('reports applied units whose file is gone', () => {
    const plan = planRun(units, [row('0000_gone')]);
    expect(plan.missing.map((r) => r.id)).toEqual(['0000_gone']);
  });

  it('resumes a non-transactional unit at the first statement not done', () => {
    const stmts = [
      statement('CREATE INDEX CONCURRENTLY a ON t (a)'),
      statement('CREATE INDEX CONCURRENTLY b ON t (b)'),
      statement('CREATE INDEX CONCURRENTLY c ON t (c)'),
    ];
    const u = unit('0004_idx', { statements: stmts, options: { transaction: false } });
    const plan = planRun([u], [row('0004_idx', { status: 'failed', progress: { statements: [stmts[0]!.hash, stmts[1]!.hash] } })]);
    expect(plan.toRun[0]?.resume).toEqual({ kind: 'statement', statement: 2 });
  });

  it('calls a partly done non-transactional unit whose done statements changed drift', () => {
    const u = unit('0004_idx', { statements: [statement('CREATE INDEX CONCURRENTLY a2 ON t (a)')], options: { transaction: false } });
    const plan = planRun(
      [u],
      [row('0004_idx', { status: 'failed', checksum: 'sum:old', progress: { statements: ['hash:CREATE INDEX CONCURRENTLY a ON t (a)'] } })],
    );
    expect(ids(plan.drifted)).toEqual(['0004_idx']);
  });

  it('resumes a batched backfill from its cursor', () => {
    const u = unit('0005_fill', { kind: 'backfill', options: { batch: { table: 'hosts', key: 'id', size: 100 } } });
    const plan = planRun([u], [row('0005_fill', { status: 'running', progress: { cursor: '4200', rowsDone: 4200 } })]);
    expect(plan.toRun[0]?.resume).toEqual({ kind: 'cursor', cursor: '4200', rowsDone: 4200 });
  });

  it('starts a rolled back backfill from scratch, not from its old cursor', () => {
    const u = unit('0005_fill', { kind: 'backfill', options: { batch: { table: 'hosts', key: 'id', size: 100 } } });
    const plan = planRun([u], [row('0005_fill', { status: 'rolled_back', progress: { cursor: '4200', rowsDone: 4200 } })]);
    expect(plan.toRun[0]?.resume).toEqual({ kind: 'start' });
  });

  it('warns about a pending unit older than an applied one', () => {
    const plan = planRun(units, [row('0003_c')]);
    expect(plan.entries[0]?.warnings.join()).toMatch(/out of order/);
    expect(ids(plan.toRun)).toEqual(['0001_a', '0002_b']);
  });
});

describe('units placed with a letter', () => {
  it('a unit placed before the highest applied one is out of order; one after it is not', () => {
    const units = [unit('0007_a'), unit('0007_b', { id: '0007a_b', letter: 'a' }), unit('0007_c', { id: '0007b_c', letter: 'b' })];
    const plan = planRun(units, [row('0007_a'), row('0007b_c')]);
    expect(ids(plan.toRun)).toEqual(['0007a_b']);
    expect(plan.entries[1]?.warnings.join()).toMatch(/out of order/);
    expect(planRun(units, [row('0007_a')]).entries[1]?.warnings.join()).not.toMatch(/out of order/);
  });
});
