/** A JUnit report of a rehearsal: a test case per step, and per unit of the apply and rollback steps. */
import type { RehearseResult } from '../app/rehearse.js';
import { describeLocks } from '../exec/lock-trace.js';

function escape(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .split('')
    .filter((ch) => ch >= ' ' || ch === '\n' || ch === '\t' || ch === '\r')
    .join('');
}

interface Case {
  classname: string;
  name: string;
  seconds: number;
  failure?: string;
  /** An applied unit's lock trace: a `lock` property each, and the lines as system-out. */
  locks?: string[];
}

/**
 * One suite of the steps, and one suite per step that ran units (its units as cases). A
 * unit's time is part of its step's, so the root's time is the steps' alone: nothing is
 * counted twice by a dashboard that adds suites or cases up within a suite.
 */
export function junitReport(result: RehearseResult, suiteName = 'tenantify rehearse'): string {
  const steps: Case[] = result.steps.map((step) => ({
    classname: 'rehearse',
    name: step.name,
    seconds: step.durationMs / 1000,
    ...(step.ok ? {} : { failure: step.details.join('\n') }),
  }));
  const suites = [{ name: suiteName, cases: steps }];
  for (const step of result.steps) {
    // Units of the apply and rollback steps; rules of a tenancy check step.
    const cases = step.units ?? step.rules;
    if (!cases?.length) continue;
    const classname = `rehearse.${step.name.replace(/\s+/g, '_')}`;
    const locks = new Map(step.units?.map((u) => [u.id, u.locks]));
    suites.push({
      name: `${suiteName}: ${step.name}`,
      cases: cases.map((unit) => ({
        classname,
        name: unit.id,
        seconds: unit.durationMs / 1000,
        ...(unit.ok ? {} : { failure: unit.message ?? 'failed' }),
        ...(locks.get(unit.id) ? { locks: describeLocks(locks.get(unit.id) ?? []) } : {}),
      })),
    });
  }
  const failed = (cases: Case[]): number => cases.filter((c) => c.failure !== undefined).length;
  const seconds = (cases: Case[]): string => cases.reduce((t, c) => t + c.seconds, 0).toFixed(3);
  const all = suites.flatMap((s) => s.cases);
  const body = suites
    .map((suite) => {
      const cases = suite.cases.map((c) => {
        const head = `    <testcase classname="${escape(c.classname)}" name="${escape(c.name)}" time="${c.seconds.toFixed(3)}"`;
        const inside = [
          ...(c.locks?.length
            ? ['      <properties>', ...c.locks.map((l) => `        <property name="lock" value="${escape(l)}"/>`), '      </properties>']
            : []),
          ...(c.failure !== undefined
            ? [`      <failure message="${escape(c.failure.split('\n')[0] ?? '')}">${escape(c.failure)}</failure>`]
            : []),
          ...(c.locks?.length ? [`      <system-out>${escape(c.locks.map((l) => `lock: ${l}`).join('\n'))}</system-out>`] : []),
        ];
        return inside.length === 0 ? `${head}/>` : [`${head}>`, ...inside, '    </testcase>'].join('\n');
      });
      const head = `  <testsuite name="${escape(suite.name)}" tests="${suite.cases.length}" failures="${failed(suite.cases)}" errors="0" skipped="0" time="${seconds(suite.cases)}">`;
      return [head, ...cases, '  </testsuite>'].join('\n');
    })
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="${escape(suiteName)}" tests="${all.length}" failures="${failed(all)}" time="${seconds(steps)}">
${body}
</testsuites>
`;
}
