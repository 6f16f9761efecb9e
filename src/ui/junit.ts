/** A JUnit report of a rehearsal: a test case per step, and per unit of the apply and rollback steps. */
import type { RehearseResult } from '../app/rehearse.js';

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').split('').filter((ch) => ch >= ' ' || ch === '\n' || ch === '\t' || ch === '\r').join('');
}

interface Case {
  classname: string;
  name: string;
  seconds: number;
  failure?: string;
}

export function junitReport(result: RehearseResult, suiteName = 'tenantify rehearse'): string {
  const cases: Case[] = [];
  for (const step of result.steps) {
    cases.push({ classname: 'rehearse', name: step.name, seconds: step.durationMs / 1000, ...(step.ok ? {} : { failure: step.details.join('\n') }) });
    for (const unit of step.units ?? []) {
      cases.push({ classname: `rehearse.${step.name.replace(/\s+/g, '_')}`, name: unit.id, seconds: unit.durationMs / 1000, ...(unit.ok ? {} : { failure: unit.message ?? 'failed' }) });
    }
  }
  const failures = cases.filter((c) => c.failure !== undefined).length;
  const total = cases.reduce((t, c) => t + c.seconds, 0);
  const body = cases
    .map((c) => {
      const head = `    <testcase classname="${escape(c.classname)}" name="${escape(c.name)}" time="${c.seconds.toFixed(3)}"`;
      return c.failure === undefined ? `${head}/>` : `${head}>\n      <failure message="${escape(c.failure.split('\n')[0] ?? '')}">${escape(c.failure)}</failure>\n    </testcase>`;
    })
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="${escape(suiteName)}" tests="${cases.length}" failures="${failures}" time="${total.toFixed(3)}">
  <testsuite name="${escape(suiteName)}" tests="${cases.length}" failures="${failures}" errors="0" skipped="0" time="${total.toFixed(3)}">
${body}
  </testsuite>
</testsuites>
`;
}
