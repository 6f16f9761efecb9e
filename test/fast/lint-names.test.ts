/**
 * lint's table sizes look tables up by the names its facts give (issue 24): a schema whose
 * name holds a dot is one part, so `"my.schema".t` is looked up as itself, never as
 * `my."schema.t"`, and a mixed-case name keeps its case.
 */
import { describe, expect, it } from 'vitest';
import { loadProject } from '../../src/app/project.js';
import { regclassText } from '../../src/lint/catalog.js';
import { lintPlan } from '../../src/lint/lint.js';
import { writePlan } from '../support/plan-dir.js';

/** The names lint asks the catalog about, and the text each is looked up by. */
async function lookedUp(sql: string): Promise<[string, string][]> {
  const project = await loadProject(writePlan({ 'migrations/0001_write.sql': `-- tenantify:lock-timeout 500ms\n${sql}` }));
  let asked: string[] = [];
  const report = await lintPlan({
    directory: project.directory,
    config: project.config,
    units: project.units,
    tableRows: async (tables) => {
      asked = tables;
      return new Map(tables.map((t) => [t, 10_000_000]));
    },
  });
  // The sizes given were found under the names asked: the rule fires for each.
  expect(report.findings.filter((f) => f.rule === 'unbatched-update-large-table')).toHaveLength(asked.length);
  return asked.map((name) => [name, regclassText(name)]);
}

describe('lint table names', () => {
  it('a dotted schema is one part, apart from a table whose name holds the dot', async () => {
    expect(await lookedUp('UPDATE "my.schema".t SET x = 1;\nDELETE FROM my."schema.t";\n')).toEqual([
      ['"my.schema".t', '"my.schema".t'],
      ['my."schema.t"', 'my."schema.t"'],
    ]);
  });

  it('keeps the case and quotes of names as stored', async () => {
    expect(await lookedUp('UPDATE "Order" SET x = 1;\nUPDATE public."teamMember" SET x = 1;\nUPDATE "a""b".c SET x = 1;\n')).toEqual([
      ['Order', '"Order"'],
      ['public.teamMember', 'public."teamMember"'],
      ['"a""b".c', '"a""b".c'],
    ]);
  });
});
