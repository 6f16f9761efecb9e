/**
 * Preload for profiling a tenantify run without touching src/:
 *   BENCH_TRACE=/tmp/trace.json node --import ./bench/instrument.mjs bin/tenantify apply ...
 * Wraps pg.Client#query (the one client every ledger write, statement, verify, BEGIN and
 * COMMIT goes through, Kysely included) and records, per kind of query, the count and the
 * time from call to result; the gaps between queries are the client's own work. Written as
 * JSON at exit. Bench-only.
 */
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';

const preloadAt = performance.now();
const require = createRequire(import.meta.url);
const pg = require('pg');

const kinds = new Map();
const timeline = [];
let firstQueryAt;
let lastEnd;
let gapMs = 0;
let inFlight = 0;

function kindOf(text) {
  const sql = String(text).trimStart();
  // Several statements in one simple-query message (a pipelined unit).
  if (/^BEGIN;/i.test(sql) || (/^BEGIN/i.test(sql) && sql.includes(';\n'))) return 'batch: BEGIN; [start;] body; verify';
  if (/units"? AS u/i.test(sql) && /;\s*(COMMIT|RELEASE SAVEPOINT \w+)\s*$/i.test(sql)) return 'batch: applied transition; COMMIT';
  if (/unnest\(\$1::text\[\]\)/.test(sql)) return 'snapshot scope';
  if (/^BEGIN/i.test(sql)) return 'BEGIN';
  if (/^COMMIT/i.test(sql)) return 'COMMIT';
  if (/^ROLLBACK/i.test(sql)) return 'ROLLBACK';
  if (sql.startsWith('SELECT to_jsonb(v) AS row')) return 'verify/precheck';
  if (/INSERT INTO "?[\w]+"?\."?units"? AS u/i.test(sql)) return 'ledger.transition';
  if (sql.startsWith('CREATE SCHEMA IF NOT EXISTS')) return 'ledger DDL';
  if (/pg_try_advisory_lock|pg_advisory_unlock/.test(sql)) return 'advisory lock';
  if (/pg_backend_pid\(\) AS pid/.test(sql)) return 'connect info';
  if (/to_regclass|FROM "?\w+"?\."?meta"?/.test(sql)) return 'ledger.exists';
  if (/FROM "?\w+"?\."?(units|runs)"? ORDER BY/.test(sql)) return 'ledger.read';
  if (/INSERT INTO "?\w+"?\."?runs"?|UPDATE "?\w+"?\."?runs"?/.test(sql)) return 'ledger runs';
  if (/^(CREATE|COMMENT|ALTER|DROP|INSERT|UPDATE|DELETE)/i.test(sql)) return 'unit statement';
  return 'other';
}

function record(kind, started, ended) {
  const k = kinds.get(kind) ?? { count: 0, ms: 0 };
  k.count++;
  k.ms += ended - started;
  kinds.set(kind, k);
}

const original = pg.Client.prototype.query;
pg.Client.prototype.query = function patchedQuery(config, values, callback) {
  const text = typeof config === 'string' ? config : config && config.text;
  // connect() issues its own startup; only count user queries with text.
  if (text === undefined) return original.call(this, config, values, callback);
  const started = performance.now();
  if (firstQueryAt === undefined) firstQueryAt = started;
  if (inFlight === 0 && lastEnd !== undefined) gapMs += started - lastEnd;
  inFlight++;
  const kind = kindOf(text);
  const done = () => {
    const ended = performance.now();
    inFlight--;
    lastEnd = ended;
    record(kind, started, ended);
    if (timeline.length < 40) timeline.push({ kind, at: Math.round(started * 100) / 100, ms: Math.round((ended - started) * 100) / 100 });
  };
  const result = original.call(this, config, values, callback);
  if (result && typeof result.then === 'function') {
    result.then(done, done);
  } else {
    done();
  }
  return result;
};

const originalConnect = pg.Client.prototype.connect;
let connectMs = 0;
let connectAt;
pg.Client.prototype.connect = function patchedConnect(...args) {
  const started = performance.now();
  if (connectAt === undefined) connectAt = started;
  const result = originalConnect.apply(this, args);
  if (result && typeof result.then === 'function') result.then(() => (connectMs += performance.now() - started), () => {});
  return result;
};

process.on('exit', () => {
  const file = process.env.BENCH_TRACE;
  if (!file) return;
  const exitAt = performance.now();
  const queries = Object.fromEntries([...kinds].map(([k, v]) => [k, { count: v.count, ms: Math.round(v.ms * 10) / 10 }]));
  const queryMs = [...kinds.values()].reduce((a, v) => a + v.ms, 0);
  writeFileSync(
    file,
    JSON.stringify(
      {
        preloadAt: Math.round(preloadAt * 10) / 10,
        connectAt: connectAt === undefined ? null : Math.round(connectAt * 10) / 10,
        connectMs: Math.round(connectMs * 10) / 10,
        firstQueryAt: firstQueryAt === undefined ? null : Math.round(firstQueryAt * 10) / 10,
        lastQueryEnd: lastEnd === undefined ? null : Math.round(lastEnd * 10) / 10,
        exitAt: Math.round(exitAt * 10) / 10,
        queryMs: Math.round(queryMs * 10) / 10,
        gapBetweenQueriesMs: Math.round(gapMs * 10) / 10,
        queries,
        firstQueries: timeline,
      },
      null,
      2,
    ),
  );
});
