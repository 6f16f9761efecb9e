import { writeFile } from 'node:fs/promises';
import { rehearse } from '../../app/rehearse.js';
import { UsageError } from '../../errors.js';
import { lockSummary } from '../../exec/lock-trace.js';
import { junitReport } from '../../ui/junit.js';
import { createOutput } from '../../ui/output.js';
import { quietReporter } from '../../ui/reporter.js';
import { hasLibpqEnvironment, resolveDatabaseUrl, type CommonOptions } from '../common.js';

interface RehearseCliOptions extends CommonOptions {
  fixture?: string;
  schemaOnly?: boolean;
  junit?: string;
  citus?: boolean;
  workers?: number;
}

export default async function rehearseCommand(options: RehearseCliOptions): Promise<number> {
  const out = createOutput(options);
  if (options.workers !== undefined && !options.citus)
    throw new UsageError('--workers is for a Citus rehearsal', { code: 'option-conflict', hint: 'add --citus, or leave --workers out' });
  // Without --fixture, the source is found as every other command finds its database.
  const sourceUrl = options.fixture ? undefined : resolveDatabaseUrl(options);
  const result = await rehearse({
    dir: options.dir,
    sourceUrl,
    sourceFromEnvironment: !options.fixture && !sourceUrl && hasLibpqEnvironment(),
    fixture: options.fixture,
    schemaOnly: Boolean(options.schemaOnly),
    targetServerUrl: process.env['TENANTIFY_REHEARSE_SERVER_URL'] || undefined,
    citus: options.citus ? { workers: options.workers ?? 2 } : undefined,
    reporter: { ...quietReporter(out), unitStarted: () => {}, unitDone: () => {} },
    log: (line) => out.log(line),
  });
  if (options.junit) await writeFile(options.junit, junitReport(result));
  if (out.json) out.result(result);
  else {
    for (const step of result.steps) {
      const mark = step.ok ? out.style.green('✔') : out.style.red('✖');
      out.line(
        `${mark} ${step.name.padEnd(24)} ${(step.durationMs / 1000).toFixed(1).padStart(6)}s  ${step.ok ? out.style.dim(step.details[0] ?? '') : ''}`,
      );
      if (!step.ok) for (const line of step.details) out.line(`    ${out.style.red(line)}`);
    }
    if (result.locks.length > 0) {
      // The strongest lock of each relation, held from the statement that took it to the unit's commit.
      out.line(out.style.bold('Locks taken (apply, held until each unit commits):'));
      const width = Math.max(...result.locks.map((u) => u.unit.length));
      for (const { unit, locks } of result.locks)
        out.line(`  ${unit.padEnd(width)}  ${locks?.length ? lockSummary(locks) : out.style.dim(lockSummary(locks))}`);
    }
    out.line(
      result.ok
        ? out.style.green('Rehearsal passed: the plan applies, verifies, rolls back to exactly the source, and applies again.')
        : out.style.red('Rehearsal failed.'),
    );
  }
  if (!result.ok && !out.json) out.line('Fix what the failed step names, then rehearse again; the source database was not touched.');
  return result.exitCode;
}
