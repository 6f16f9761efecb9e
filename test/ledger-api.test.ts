import { describe, expect, it } from 'vitest';
import { connect } from '../src/db/connection.js';
import { Ledger } from '../src/db/ledger.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';

// A schema name that must be quoted: the statements Kysely builds and the sql templates name it alike.
const schema = 'Ledger "eu"';
const table = `"Ledger ""eu"""`;
const unit = { id: '0001_a', kind: 'migration' as const, file: 'migrations/0001_a.sql', checksum: 'sum-a', fingerprint: 'fp-a' };

describe("the ledger's reads and writes", () => {
  const dropLater = dropAfterAll();

  it('give its rows as LedgerUnit, LedgerRun and events: numbers, dates and parsed jsonb', async () => {
    const db = dropLater(await freshDatabase('ledgerapi'));
    const session = await connect(db.url, 'test');
    try {
      const ledger = new Ledger(session.db, schema);
      expect(await ledger.read()).toEqual({ exists: false, version: undefined, units: [], lastRun: undefined });
      await ledger.ensure();
      expect(await ledger.read()).toEqual({ exists: true, version: 2, units: [], lastRun: undefined });

      const runId = await ledger.startRun('apply', { to: '0001_a' });
      expect(typeof runId).toBe('number');
      await ledger.transition({ runId, unit, status: 'running', event: 'started', fresh: true, firstRecord: true });
      await ledger.event(runId, unit.id, 'retry', { attempt: 2 });

      const state = await ledger.read();
      expect(state.units).toEqual([
        expect.objectContaining({
          ...unit,
          status: 'running',
          runId,
          appliedAt: null,
          durationMs: null,
          progress: {},
          verifyChecks: [],
          verifyResults: null,
          snapshot: null,
          error: null,
        }),
      ]);
      expect(state.units[0]?.startedAt).toBeInstanceOf(Date);
      expect(state.units[0]?.updatedAt).toBeInstanceOf(Date);
      const [options] = await query<{ options: unknown }>(db.url, `SELECT options FROM ${table}.runs WHERE id = $1`, [runId]);
      expect(options?.options).toEqual({ to: '0001_a' });
      expect(state.lastRun).toMatchObject({
        id: runId,
        command: 'apply',
        clientPid: process.pid,
        backendPid: session.backendPid,
        finishedAt: null,
        outcome: null,
        exitCode: null,
      });
      expect(await ledger.runOfBackend(session.backendPid)).toEqual(state.lastRun);

      const events = await ledger.events(unit.id);
      expect(events.map((e) => [e.runId, e.unitId, e.event])).toEqual([
        [runId, unit.id, 'retry'],
        [runId, unit.id, 'started'],
      ]);
      expect(events[0]?.detail).toEqual({ attempt: 2 });
      expect(events[0]?.at).toBeInstanceOf(Date);
      expect(await ledger.events('9999_none')).toEqual([]);

      expect(await ledger.unitsOfRun(runId, [unit.id, '9999_none'])).toEqual(new Map([[unit.id, { status: 'running', durationMs: null }]]));
      expect(await ledger.unitsOfRun(runId, [])).toEqual(new Map());

      // A run whose backend is gone died; the run of this live session did not.
      const [dead] = await query<{ id: number }>(
        db.url,
        `INSERT INTO ${table}.runs (command, client_host, client_pid, backend_pid, tool_version) VALUES ('apply', 'h', 1, 0, 'v') RETURNING id::int`,
      );
      const current = await ledger.startRun('apply', {});
      const died = await ledger.closeDeadRuns(current);
      expect(died).toEqual([expect.objectContaining({ id: dead?.id, outcome: 'died', backendPid: 0, clientHost: 'h' })]);
      expect(died[0]?.finishedAt).toBeInstanceOf(Date);
      expect((await ledger.run(runId))?.finishedAt).toBeNull();

      await ledger.finishRun(runId, 'done', 0);
      const finished = await ledger.run(runId);
      expect(finished).toMatchObject({ id: runId, outcome: 'done', exitCode: 0 });
      expect(finished?.finishedAt).toBeInstanceOf(Date);
      expect(await ledger.run(current + 1000)).toBeUndefined();
    } finally {
      await session.close();
    }
  });

  it('reads a ledger of version 1 without a fingerprint, and leaves it as it is', async () => {
    const db = dropLater(await freshDatabase('ledgerapi'));
    const session = await connect(db.url, 'test');
    try {
      const ledger = new Ledger(session.db, schema);
      await ledger.ensure();
      const runId = await ledger.startRun('apply', {});
      await ledger.transition({ runId, unit, status: 'running', event: 'started', fresh: true, firstRecord: true });
      await query(
        db.url,
        `ALTER TABLE ${table}.units DROP COLUMN fingerprint; UPDATE ${table}.meta SET value = '1' WHERE key = 'ledger_version'`,
      );

      const state = await ledger.read();
      expect(state.version).toBe(1);
      expect(state.units).toEqual([
        expect.objectContaining({ id: unit.id, checksum: unit.checksum, fingerprint: null, status: 'running' }),
      ]);
      const [meta] = await query<{ value: string }>(db.url, `SELECT value FROM ${table}.meta WHERE key = 'ledger_version'`);
      expect(meta?.value).toBe('1');
      const columns = await query<{ n: number }>(
        db.url,
        "SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'fingerprint'",
        [`${table}.units`],
      );
      expect(columns[0]?.n).toBe(0);
    } finally {
      await session.close();
    }
  });
});
