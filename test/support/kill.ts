/** Kill -9 the CLI at spread-out moments of an apply, resume, and compare with an uninterrupted run. */
import { contentFingerprint, freshDatabase, query } from './db.js';
import { runCli, startCli } from './cli.js';

export interface KillOutcome {
  delayMs: number;
  /** Whether the first run had already finished when the kill came. */
  finishedBeforeKill: boolean;
  statusesAtKill: string;
  resumeCode: number | null;
  fingerprint: Record<string, string>;
}

export async function uninterrupted(template: string, dir: string): Promise<{ durationMs: number; fingerprint: Record<string, string> }> {
  const db = await freshDatabase('base', template);
  try {
    const started = performance.now();
    const result = await runCli(['apply', '-d', db.url, '--dir', dir]);
    if (result.code !== 0) throw new Error(`uninterrupted apply failed (${result.code}): ${result.stderr}`);
    return { durationMs: performance.now() - started, fingerprint: await contentFingerprint(db.url) };
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
    const statuses = await query<{ s: string | null }>(
      db.url,
      "SELECT CASE WHEN to_regclass('tenantify.units') IS NULL THEN 'no ledger' END AS s",
    );
    const statusesAtKill =
      statuses[0]?.s ??
      (await query<{ s: string }>(db.url, "SELECT coalesce(string_agg(status, ',' ORDER BY id), '') AS s FROM tenantify.units"))[0]?.s ??
      '';
    const resume = await runCli(['apply', '-d', db.url, '--dir', dir]);
    if (resume.code !== 0) throw new Error(`resume after a kill at ${delayMs} ms failed (${resume.code}): ${resume.stderr}`);
    return { delayMs, finishedBeforeKill, statusesAtKill, resumeCode: resume.code, fingerprint: await contentFingerprint(db.url) };
  } finally {
    await db.drop();
  }
}
