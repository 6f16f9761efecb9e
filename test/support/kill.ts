/** Kill -9 the CLI at spread-out moments of an apply, resume, and compare with an uninterrupted run. */
import pg from 'pg';
import { contentFingerprint, freshDatabase, query, until } from './db.js';
import { runCli, startCli } from './cli.js';

export interface KillOutcome {
  delayMs: number;
  /** Whether the first run had already finished when the kill came. */
  finishedBeforeKill: boolean;
  statusesAtKill: string;
  resumeCode: number | null;
  fingerprint: Record<string, string>;
}

export interface Uninterrupted {
  durationMs: number;
  /** With `measureStart`: an apply started again on the applied database, what a run costs before its first unit (process start, connect, ledger, plan). */
  startMs: number;
  fingerprint: Record<string, string>;
}

export async function uninterrupted(template: string, dir: string, options: { measureStart?: boolean } = {}): Promise<Uninterrupted> {
  const db = await freshDatabase('base', template);
  try {
    const started = performance.now();
    const result = await runCli(['apply', '-d', db.url, '--dir', dir]);
    if (result.code !== 0) throw new Error(`uninterrupted apply failed (${result.code}): ${result.stderr}`);
    const durationMs = performance.now() - started;
    let startMs = 0;
    if (options.measureStart) {
      const again = performance.now();
      const nothing = await runCli(['apply', '-d', db.url, '--dir', dir]);
      if (nothing.code !== 0) throw new Error(`apply of an applied plan failed (${nothing.code}): ${nothing.stderr}`);
      startMs = performance.now() - again;
    }
    return { durationMs, startMs, fingerprint: await contentFingerprint(db.url) };
  } finally {
    await db.drop();
  }
}

/** The units' statuses in order, or 'no ledger'. */
async function statusesOf(url: string): Promise<string> {
  const [ledger] = await query<{ s: string | null }>(
    url,
    "SELECT CASE WHEN to_regclass('tenantify.units') IS NULL THEN 'no ledger' END AS s",
  );
  if (ledger?.s) return ledger.s;
  const [row] = await query<{ s: string }>(url, "SELECT coalesce(string_agg(status, ',' ORDER BY id), '') AS s FROM tenantify.units");
  return row?.s ?? '';
}

/**
 * Kills an apply while it waits on a lock, mid-run: the application's tables are locked
 * (reads still pass) before the run starts, so it waits at the first unit that writes or
 * references one of them; the kill comes once it waits there. Throws if the run ends first.
 */
export async function killWhileBlocked(
  url: string,
  args: string[],
): Promise<{ signal: NodeJS.Signals | null; code: number | null; stderr: string }> {
  const holder = new pg.Client({ connectionString: url });
  holder.on('error', () => {});
  await holder.connect();
  try {
    const tables = await holder.query<{ name: string }>(
      "SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    );
    await holder.query(`BEGIN; LOCK TABLE ${tables.rows.map((t) => t.name).join(', ')} IN EXCLUSIVE MODE`);
    const run = startCli(['apply', '-d', url, ...args]);
    const ended = run.done.then((r) => {
      throw new Error(`the apply ended (exit ${r.code}) before it was killed:\n${r.stderr}`);
    });
    const stop = new AbortController();
    ended.catch(() => stop.abort());
    const waiting =
      "SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND pid = (SELECT backend_pid FROM tenantify.runs WHERE to_regclass('tenantify.runs') IS NOT NULL ORDER BY id DESC LIMIT 1)";
    await Promise.race([until(url, waiting, stop.signal), ended]);
    run.child.kill('SIGKILL');
    return await run.done;
  } finally {
    await holder.end();
  }
}

/**
 * Until the killed run's sessions have ended: the server ends a session whose client died
 * once it notices (within a second: client_connection_check_interval), and the run's lock
 * goes with it. The next run of the chain must not find it held (that is exit 4, refused).
 */
function deadSessionsGone(url: string): Promise<void> {
  return until(
    url,
    "SELECT (count(*) = 0)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'tenantify %'",
  );
}

export interface KillPoint {
  delayMs: number;
  /** The run ended (exit 0) before the kill came. */
  finishedBeforeKill: boolean;
  statusesAtKill: string;
}

/**
 * One database, one apply killed with SIGKILL after each delay in turn: every run after the
 * first resumes what the kills before it left, and is killed in its turn. A last run resumes
 * to the end. A run that ends before its kill must end with exit 0 (the plan done). With
 * `blockedFirst`, the first kill comes while the run waits on a lock (killWhileBlocked), its
 * delay recorded as -1. `after` sees the database resumed to the end, before it is dropped.
 */
export async function killRepeatedlyThenResume(
  template: string,
  dir: string,
  delaysMs: number[],
  options: { blockedFirst?: boolean; after?: (url: string) => Promise<void> } = {},
): Promise<{ kills: KillPoint[]; fingerprint: Record<string, string> }> {
  const db = await freshDatabase('kills', template);
  try {
    const kills: KillPoint[] = [];
    if (options.blockedFirst) {
      const blocked = await killWhileBlocked(db.url, ['--dir', dir]);
      if (blocked.signal !== 'SIGKILL') throw new Error(`the blocked run was not killed (exit ${blocked.code}): ${blocked.stderr}`);
      await deadSessionsGone(db.url);
      kills.push({ delayMs: -1, finishedBeforeKill: false, statusesAtKill: await statusesOf(db.url) });
    }
    for (const delayMs of delaysMs) {
      const run = startCli(['apply', '-d', db.url, '--dir', dir]);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      run.child.kill('SIGKILL');
      const result = await run.done;
      const finishedBeforeKill = result.signal !== 'SIGKILL';
      if (finishedBeforeKill && result.code !== 0)
        throw new Error(`the run to be killed after ${delayMs} ms ended first (exit ${result.code}): ${result.stderr}`);
      await deadSessionsGone(db.url);
      kills.push({ delayMs, finishedBeforeKill, statusesAtKill: await statusesOf(db.url) });
    }
    const resume = await runCli(['apply', '-d', db.url, '--dir', dir]);
    if (resume.code !== 0) throw new Error(`resume after ${kills.length} kills failed (${resume.code}): ${resume.stderr}`);
    const fingerprint = await contentFingerprint(db.url);
    await options.after?.(db.url);
    return { kills, fingerprint };
  } finally {
    await db.drop();
  }
}

export async function killThenResume(template: string, dir: string, delayMs: number): Promise<KillOutcome> {
  const db = await freshDatabase('kill', template);
  try {
    const run = startCli(['apply', '-d', db.url, '--dir', dir]);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    const finishedBeforeKill = run.child.exitCode !== null;
    run.child.kill('SIGKILL');
    await run.done;
    const statusesAtKill = await statusesOf(db.url);
    const resume = await runCli(['apply', '-d', db.url, '--dir', dir]);
    if (resume.code !== 0) throw new Error(`resume after a kill at ${delayMs} ms failed (${resume.code}): ${resume.stderr}`);
    return { delayMs, finishedBeforeKill, statusesAtKill, resumeCode: resume.code, fingerprint: await contentFingerprint(db.url) };
  } finally {
    await db.drop();
  }
}
