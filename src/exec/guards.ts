/**
 * Guards: named read-only queries from tenantify.config.json, timed before the run and after
 * each unit. A unit that makes one markedly slower (an index it dropped, a plan it changed)
 * fails. Timing is the server's own execution time (EXPLAIN ANALYZE), so the network and the
 * client do not blur it, and the median of several repetitions, so one hiccup does not either.
 */
import type pg from 'pg';
import type { Config } from '../plan/config.js';
import { withTransaction } from '../db/transaction.js';

export type Guard = Config['guards'][number];

export const defaultThreshold = 0.2;
export const defaultRepetitions = 5;
/** Below this, a slowdown is jitter whatever its ratio: a 0.03 ms lookup taking 0.05 ms must not revert a unit. */
export const noiseFloorMs = 1;

export interface GuardTiming {
  name: string;
  medianMs: number;
  samplesMs: number[];
}

export interface GuardRegression {
  name: string;
  beforeMs: number;
  afterMs: number;
  threshold: number;
}

/** Each guard once to warm the cache, then `repetitions` times inside a READ ONLY transaction. */
export async function timeGuards(client: pg.Client, guards: Guard[]): Promise<GuardTiming[]> {
  const timings: GuardTiming[] = [];
  await withTransaction(client, { readOnly: true, rollback: true }, async () => {
    for (const guard of guards) {
      await executionMs(client, guard.sql);
      const samplesMs: number[] = [];
      for (let i = 0; i < (guard.repetitions ?? defaultRepetitions); i++) samplesMs.push(await executionMs(client, guard.sql));
      timings.push({ name: guard.name, medianMs: median(samplesMs), samplesMs });
    }
  });
  return timings;
}

async function executionMs(client: pg.Client, query: string): Promise<number> {
  const result = await client.query<{ 'QUERY PLAN': [{ 'Execution Time': number }] }>(
    `EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ${query}`,
  );
  return result.rows[0]?.['QUERY PLAN'][0]['Execution Time'] ?? 0;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** The guards now slower than their baseline by more than their threshold (and than the noise floor). */
export function guardRegressions(guards: Guard[], baseline: GuardTiming[], now: GuardTiming[]): GuardRegression[] {
  const regressions: GuardRegression[] = [];
  for (const guard of guards) {
    const before = baseline.find((t) => t.name === guard.name)?.medianMs;
    const after = now.find((t) => t.name === guard.name)?.medianMs;
    if (before === undefined || after === undefined) continue;
    const threshold = guard.threshold ?? defaultThreshold;
    if (after > before * (1 + threshold) && after - before > noiseFloorMs)
      regressions.push({ name: guard.name, beforeMs: before, afterMs: after, threshold });
  }
  return regressions;
}

export function describeRegression(r: GuardRegression): string {
  const pct = Math.round(((r.afterMs - r.beforeMs) / Math.max(r.beforeMs, 0.001)) * 100);
  return `guard "${r.name}": ${r.beforeMs.toFixed(2)} ms before the run, ${r.afterMs.toFixed(2)} ms now (+${pct}%, threshold ${Math.round(r.threshold * 100)}%)`;
}
