import { describe, expect, it } from 'vitest';
import { planRollback } from '../../src/plan/planner.js';
import type { Script } from '../../src/plan/types.js';
import { row, statement, unit } from '../support/builders.js';

const ids = (entries: { unit: { id: string } }[]) => entries.map((e) => e.unit.id);

function revertScript(id: string, overrides: Partial<Script> & { transaction?: boolean; batch?: boolean } = {}): Script {
  const { transaction = true, batch = false, ...rest } = overrides;
  const base = unit(id, { options: { transaction, batch: batch ? { table: 't', key: 'id', size: 10 } : undefined } });
  return {
    id: base.id,
    file: `rollbacks/${id}.sql`,
    absolutePath: `/plan/rollbacks/${id}.sql`,
    format: 'sql',
    checksum: `rb:${id}`,
    options: base.options,
    statements: [statement(`DROP TABLE t${base.prefix}`)],
    prechecks: [],
    verifies: [],
    writes: [],
    definition: undefined,
    ...rest,
  };
}

const withRollback = (id: string, overrides: Parameters<typeof unit>[1] = {}) => unit(id, { rollback: revertScript(id), ...overrides });
const at = (second: number) => new Date(second * 1000);

describe('planRollback', () => {
  const units = [withRollback('0001_a'), withRollback('0002_b'), withRollback('0003_c')];
  const applied = [row('0001_a', { appliedAt: at(1) }), row('0002_b', { appliedAt: at(2) }), row('0003_c', { appliedAt: at(3) })];

  it('reverts every applied unit, newest first', () => {
    const plan = planRollback(units, applied);
    expect(ids(plan.toRevert)).toEqual(['0003_c', '0002_b', '0001_a']);
    expect(plan.kept).toEqual([]);
  });

  it('leaves pending and rolled back units alone', () => {
    const plan = planRollback(units, [row('0001_a', { appliedAt: at(1) }), row('0002_b', { status: 'rolled_back', appliedAt: null })]);
    expect(ids(plan.toRevert)).toEqual(['0001_a']);
  });

  it('--steps N reverts the N newest', () => {
    const plan = planRollback(units, applied, { steps: 2 });
    expect(ids(plan.toRevert)).toEqual(['0003_c', '0002_b']);
    expect(ids(plan.kept)).toEqual(['0001_a']);
  });

  it('refuses --steps beyond what is applied, saying how many are', () => {
    expect(() => planRollback(units, applied.slice(0, 2), { steps: 3 })).toThrow(/--steps 3: only 2 units are applied/);
  });

  it('--to ID reverts the units applied after ID, and ID stays applied', () => {
    expect(ids(planRollback(units, applied, { to: '0001_a' }).toRevert)).toEqual(['0003_c', '0002_b']);
    expect(planRollback(units, applied, { to: '0003_c' }).toRevert).toEqual([]);
  });

  it('refuses a --to that is unknown or not applied', () => {
    expect(() => planRollback(units, applied, { to: '0009_nope' })).toThrow(/--to 0009_nope: no such unit in the plan/);
    expect(() => planRollback(units, applied.slice(0, 1), { to: '0002_b' })).toThrow(/--to 0002_b: that unit is not applied/);
  });

  it('refuses --steps together with --to', () => {
    expect(() => planRollback(units, applied, { steps: 1, to: '0001_a' })).toThrow(/not both/);
  });

  it('undoes out-of-order applies in the reverse order they were applied', () => {
    const plan = planRollback(units, [
      row('0001_a', { appliedAt: at(1) }),
      row('0003_c', { appliedAt: at(2) }),
      row('0002_b', { appliedAt: at(3) }),
    ]);
    expect(ids(plan.toRevert)).toEqual(['0002_b', '0003_c', '0001_a']);
  });

  it('orders units applied in the same instant by prefix, newest first', () => {
    expect(ids(planRollback(units, [row('0001_a'), row('0002_b'), row('0003_c')]).toRevert)).toEqual(['0003_c', '0002_b', '0001_a']);
  });

  it('names a unit without a rollback file as a problem', () => {
    const plan = planRollback([withRollback('0001_a'), unit('0002_b')], [row('0001_a'), row('0002_b')]);
    expect(plan.toRevert.map((e) => [e.unit.id, e.problem])).toEqual([
      ['0002_b', 'no rollback file: write rollbacks/0002_b.sql'],
      ['0001_a', undefined],
    ]);
  });

  it('takes a batched rollback file, always from the first key (its batches keep no cursor)', () => {
    const plan = planRollback(
      [unit('0001_a', { rollback: revertScript('0001_a', { batch: true }) })],
      [row('0001_a', { progress: { segments: [{ from: '0', to: null, cursor: '4200' }], rowsDone: 4200 } })],
    );
    expect(plan.toRevert.map((e) => [e.unit.id, e.problem, e.resume])).toEqual([['0001_a', undefined, { kind: 'start' }]]);
  });

  it('includes a partly done batched backfill or non-transactional unit, as the newest', () => {
    const fill = withRollback('0004_fill', { kind: 'backfill', options: { batch: { table: 'hosts', key: 'id', size: 100 } } });
    const idx = withRollback('0005_idx', { options: { transaction: false } });
    const rows = [
      ...applied,
      row('0004_fill', { status: 'failed', appliedAt: null, updatedAt: at(4), progress: { cursor: '4200', rowsDone: 4200 } }),
      row('0005_idx', { status: 'running', appliedAt: null, updatedAt: at(5), progress: { statements: ['hash:x'] } }),
    ];
    const plan = planRollback([...units, fill, idx], rows);
    expect(ids(plan.toRevert)).toEqual(['0005_idx', '0004_fill', '0003_c', '0002_b', '0001_a']);
    expect(plan.toRevert.slice(0, 2).every((e) => e.partial)).toBe(true);
  });

  it('leaves out a failed transactional unit: its transaction left nothing behind', () => {
    const plan = planRollback(units, [...applied.slice(0, 2), row('0003_c', { status: 'failed', appliedAt: null, updatedAt: at(9) })]);
    expect(ids(plan.toRevert)).toEqual(['0002_b', '0001_a']);
  });

  it('resumes a non-transactional rollback at the first statement an earlier attempt did not finish', () => {
    const stmts = [statement('DROP INDEX CONCURRENTLY a'), statement('DROP INDEX CONCURRENTLY b')];
    const u = unit('0004_idx', {
      options: { transaction: false },
      rollback: revertScript('0004_idx', { transaction: false, statements: stmts }),
    });
    const plan = planRollback([u], [row('0004_idx', { progress: { revertStatements: [stmts[0]!.hash] } })]);
    expect(plan.toRevert[0]?.resume).toEqual({ kind: 'statement', statement: 1 });
    expect(plan.toRevert[0]?.driftReason).toBeUndefined();
  });

  it('calls a rollback file that changed under its done statements drift', () => {
    const u = unit('0004_idx', {
      rollback: revertScript('0004_idx', { transaction: false, statements: [statement('DROP INDEX CONCURRENTLY a2')] }),
    });
    const plan = planRollback([u], [row('0004_idx', { progress: { revertStatements: ['hash:DROP INDEX CONCURRENTLY a'] } })]);
    expect(plan.toRevert[0]?.driftReason).toMatch(/1 of its statements ran before rollbacks\/0004_idx.sql changed/);
  });
});
