import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

const git = (dir: string, ...args: string[]) => execFileSync('git', ['-C', dir, ...args], { stdio: 'pipe' });
const ignored = (dir: string, path: string): boolean => {
  try {
    git(dir, 'check-ignore', '-q', path);
    return true;
  } catch {
    return false;
  }
};
const warning = /snapshots hold the tables' data and go to .*, inside the git work tree .* and not ignored by git/g;

const plan = {
  'migrations/0001_upper.sql': 'UPDATE accounts SET email = upper(email);\n',
  'migrations/0002_lower.sql': 'UPDATE accounts SET email = lower(email);\n',
};

describe('snapshots and git', () => {
  const dropLater = dropAfterAll();

  it('init writes a .gitignore that keeps .tenantify/ out of the repository, once, keeping what was there', async () => {
    const dir = writePlan({ '.gitignore': 'node_modules/' });
    git(dir, 'init', '-q');
    expect(ignored(dir, '.tenantify/snapshots/1/0001_x.dump')).toBe(false);
    expect((await runCli(['init', '--dir', dir])).code).toBe(0);
    expect(ignored(dir, '.tenantify/snapshots/1/0001_x.dump')).toBe(true);
    expect((await runCli(['init', '--dir', dir])).code).toBe(0);
    const text = readFileSync(join(dir, '.gitignore'), 'utf8');
    expect(text.startsWith('node_modules/\n')).toBe(true);
    expect(text.match(/\.tenantify/g)).toHaveLength(1);
  });

  it('apply warns once on stderr when the snapshots land in a git work tree unignored; not when ignored, outside git, or without git', async () => {
    const run = async (dir: string, env: Record<string, string> = {}) => {
      const db = dropLater(await freshDatabase('gitwarn'));
      await query(db.url, "CREATE TABLE accounts (id int PRIMARY KEY, email text); INSERT INTO accounts VALUES (1, 'a@x')");
      const result = await runCli(['apply', '--dir', dir, '-d', db.url], { env });
      expect(result.code, result.stderr).toBe(0);
      const [row] = await query<{ n: number }>(db.url, 'SELECT count(*)::int AS n FROM tenantify.units WHERE snapshot IS NOT NULL');
      expect(row?.n).toBe(2);
      return result;
    };
    const inRepo = writePlan(plan);
    git(inRepo, 'init', '-q');
    const exposed = await run(inRepo);
    expect(exposed.stderr.match(warning)).toHaveLength(1);
    expect(exposed.stdout).not.toMatch(warning);

    writeFileSync(join(inRepo, '.gitignore'), '/.tenantify/\n');
    expect((await run(inRepo)).stderr).not.toMatch(warning);

    expect((await run(writePlan(plan))).stderr).not.toMatch(warning);

    const noGit = writePlan(plan);
    git(noGit, 'init', '-q');
    expect((await run(noGit, { PATH: '/nonexistent' })).stderr).not.toMatch(warning);
  });
});
