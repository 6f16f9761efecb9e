/**
 * lint knows the safe NOT NULL pattern (issue 25, item 5): SET NOT NULL once a validated
 * `CHECK (column IS NOT NULL)` is in place takes no scan, so squawk's adding-not-nullable-field
 * is left out there, and only there; a VALIDATE in a `transaction off` file commits alone.
 */
import { describe, expect, it } from 'vitest';
import { loadProject } from '../../src/app/project.js';
import { lintPlan } from '../../src/lint/lint.js';
import { writePlan } from '../support/plan-dir.js';

const timeout = '-- tenantify:lock-timeout 500ms\n';

async function rules(files: Record<string, string>): Promise<string[]> {
  const project = await loadProject(writePlan(files));
  const report = await lintPlan({ directory: project.directory, config: project.config, units: project.units, rollbacks: true });
  expect(report.squawk.available).toBe(true);
  return report.findings.map((f) => `${f.file}:${f.line} ${f.rule}`);
}

const check = `${timeout}ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;\n`;
const validate = `${timeout}ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;\n`;
const setNotNull = `${timeout}ALTER TABLE public.users ALTER COLUMN email SET NOT NULL;\n`;

describe('lint and NOT NULL', () => {
  it('accepts SET NOT NULL after a validated CHECK (column IS NOT NULL) of an earlier unit', async () => {
    expect(
      await rules({
        'migrations/0001_check.sql': check,
        'migrations/0002_validate.sql': validate,
        'migrations/0003_not_null.sql': setNotNull,
      }),
    ).toEqual([]);
  });

  it('still flags SET NOT NULL when the check was never validated, was dropped, or is on another column', async () => {
    expect(await rules({ 'migrations/0001_check.sql': check, 'migrations/0003_not_null.sql': setNotNull })).toEqual([
      'migrations/0003_not_null.sql:2 adding-not-nullable-field',
    ]);
    const dropped = `${timeout}ALTER TABLE users DROP CONSTRAINT users_email_not_null;\n`;
    expect(
      await rules({
        'migrations/0001_check.sql': check,
        'migrations/0002_validate.sql': validate,
        'migrations/0003_drop.sql': dropped,
        'migrations/0004_not_null.sql': setNotNull,
      }),
    ).toEqual(['migrations/0004_not_null.sql:2 adding-not-nullable-field']);
    const other = `${timeout}ALTER TABLE users ALTER COLUMN name SET NOT NULL;\n`;
    expect(
      await rules({ 'migrations/0001_check.sql': check, 'migrations/0002_validate.sql': validate, 'migrations/0003_not_null.sql': other }),
    ).toEqual(['migrations/0003_not_null.sql:2 adding-not-nullable-field']);
  });

  it('a VALIDATE after ADD ... NOT VALID in one file is flagged in a transaction, not with transaction off', async () => {
    const both = `ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;\n`;
    expect(await rules({ 'migrations/0001_both.sql': `${timeout}${both}` })).toEqual([
      'migrations/0001_both.sql:3 constraint-missing-not-valid',
    ]);
    expect(await rules({ 'migrations/0001_both.sql': `-- tenantify:transaction off\n${timeout}${both}` })).toEqual([]);
  });
});
