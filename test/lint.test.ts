import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadProject } from '../src/app/project.js';
import { blockingFindings, lintPlan } from '../src/lint/lint.js';
import type { Finding } from '../src/lint/types.js';
import { runCli } from './support/cli.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const timeout = '-- tenantify:lock-timeout 5s\n';

/** One unit per rule, each line of each file known: the findings must land on them. */
const risky = {
  'migrations/0001_set_not_null.sql': `${timeout}ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n`,
  'migrations/0002_plain_index.sql': `${timeout}-- an index on a live table\nCREATE INDEX users_email_idx ON users (email);\n`,
  'migrations/0003_check.sql': `${timeout}ALTER TABLE users ADD CONSTRAINT users_email_check CHECK (email <> '');\n`,
  'migrations/0004_column_type.sql': `${timeout}ALTER TABLE users ALTER COLUMN email TYPE varchar(200);\n`,
  'migrations/0005_volatile_default.sql': `${timeout}ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();\n`,
  'migrations/0006_drop_column.sql': `${timeout}ALTER TABLE users DROP COLUMN legacy_flag;\n`,
  'migrations/0007_no_timeout.sql': `-- tenantify:lock-timeout none\n-- adds a column, catalog only, but waits for its lock with no limit (the default 500ms turned off)\nALTER TABLE users ADD COLUMN nickname text;\n`,
};

const expected: Pick<Finding, 'unit' | 'file' | 'line' | 'rule' | 'level' | 'source'>[] = [
  {
    unit: '0001_set_not_null',
    file: 'migrations/0001_set_not_null.sql',
    line: 2,
    rule: 'adding-not-nullable-field',
    level: 'error',
    source: 'squawk',
  },
  {
    unit: '0002_plain_index',
    file: 'migrations/0002_plain_index.sql',
    line: 3,
    rule: 'require-concurrent-index-creation',
    level: 'error',
    source: 'squawk',
  },
  {
    unit: '0003_check',
    file: 'migrations/0003_check.sql',
    line: 2,
    rule: 'constraint-missing-not-valid',
    level: 'error',
    source: 'squawk',
  },
  {
    unit: '0004_column_type',
    file: 'migrations/0004_column_type.sql',
    line: 2,
    rule: 'changing-column-type',
    level: 'error',
    source: 'squawk',
  },
  {
    unit: '0005_volatile_default',
    file: 'migrations/0005_volatile_default.sql',
    line: 2,
    rule: 'adding-field-with-default',
    level: 'error',
    source: 'squawk',
  },
  {
    unit: '0006_drop_column',
    file: 'migrations/0006_drop_column.sql',
    line: 2,
    rule: 'ban-drop-column',
    level: 'warning',
    source: 'squawk',
  },
  {
    unit: '0007_no_timeout',
    file: 'migrations/0007_no_timeout.sql',
    line: 3,
    rule: 'strong-lock-without-lock-timeout',
    level: 'error',
    source: 'tenantify',
  },
];

async function lintDir(dir: string, env: NodeJS.ProcessEnv = process.env) {
  const project = await loadProject(dir);
  return lintPlan({ directory: project.directory, config: project.config, units: project.units, env });
}

const brief = (f: Finding) => ({ unit: f.unit, file: f.file, line: f.line, rule: f.rule, level: f.level, source: f.source });

describe('lint rules (no database)', () => {
  it("finds each risky statement on its unit, file and line, with squawk's rule names and a safe rewrite", async () => {
    const report = await lintDir(writePlan(risky));
    expect(report.squawk.available).toBe(true);
    expect(report.findings.map(brief)).toEqual(expected);
    for (const f of report.findings) expect(f.allowed).toBe(false);
    const message = (rule: string) => report.findings.find((f) => f.rule === rule)?.message ?? '';
    expect(message('require-concurrent-index-creation')).toContain('CREATE INDEX CONCURRENTLY');
    expect(message('strong-lock-without-lock-timeout')).toMatch(
      /ALTER TABLE takes ACCESS EXCLUSIVE on users with no lock timeout.*tenantify:lock-timeout/,
    );
  });

  it('keeps an allowed finding in the list with its reason, and only unallowed errors block', async () => {
    const dir = writePlan({
      'migrations/0001_index.sql': `-- tenantify:lock-timeout 5s\n-- tenantify:allow require-concurrent-index-creation users has 40 rows and never grows\nCREATE INDEX users_email_idx ON users (email);\n`,
    });
    const report = await lintDir(dir);
    expect(report.findings.map((f) => [f.rule, f.line, f.allowed, f.reason])).toEqual([
      ['require-concurrent-index-creation', 3, true, 'users has 40 rows and never grows'],
    ]);
    expect(blockingFindings(report.findings)).toEqual([]);
  });

  it('reports an allow that covers nothing, at its line', async () => {
    const dir = writePlan({
      'migrations/0001_index.sql':
        `-- tenantify:lock-timeout 5s\n-- tenantify:allow changing-column-type the column type change was moved to 0002\nCREATE INDEX CONCURRENTLY users_email_idx ON users (email);\n`.replace(
          '5s\n',
          '5s\n-- tenantify:transaction off\n',
        ),
    });
    const report = await lintDir(dir);
    expect(report.findings.map((f) => [f.rule, f.line, f.level, f.source])).toEqual([['unused-allow', 3, 'warning', 'tenantify']]);
    expect(report.findings[0]?.message).toContain('tenantify:allow changing-column-type');
    // Without squawk, an allow of squawk's rule cannot be judged.
    expect((await lintDir(dir, { ...process.env, TENANTIFY_SQUAWK: '/nonexistent/squawk' })).findings).toEqual([]);
  });

  it('is silent on a clean plan: new tables, their indexes, a concurrent index on a live table, a lock timeout from the config', async () => {
    const dir = writePlan({
      'tenantify.config.json': JSON.stringify({ lockTimeout: '2s' }),
      'migrations/0001_create.sql': `CREATE TABLE teams (id bigint PRIMARY KEY, name text NOT NULL);\nCREATE INDEX teams_name_idx ON teams (name);\nALTER TABLE teams ADD CONSTRAINT teams_name_check CHECK (name <> '');\nALTER TABLE users ADD COLUMN team_id bigint;\n`,
      'migrations/0002_index.sql': `-- tenantify:transaction off\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_team_id_idx ON users (team_id);\n`,
      'rollbacks/0001_create.sql': `ALTER TABLE users DROP COLUMN team_id;\nDROP TABLE teams;\n`,
      'rollbacks/0002_index.sql': `-- tenantify:transaction off\nDROP INDEX CONCURRENTLY IF EXISTS users_team_id_idx;\n`,
    });
    const report = await lintDir(dir);
    expect(report.squawk.available).toBe(true);
    expect(report.findings).toEqual([]);
  });

  it('reads the lock timeout a unit sets in its body, and lets lint.rules change a level or turn a rule off', async () => {
    const files = {
      'tenantify.config.json': JSON.stringify({
        lint: { rules: { 'ban-drop-column': 'error', 'require-concurrent-index-creation': 'off' } },
      }),
      'migrations/0001_set.sql': `SET LOCAL lock_timeout = '3s';\nALTER TABLE users DROP COLUMN legacy_flag;\nCREATE INDEX users_email_idx ON users (email);\n`,
    };
    const report = await lintDir(writePlan(files));
    expect(report.findings.map((f) => [f.rule, f.level, f.line])).toEqual([['ban-drop-column', 'error', 2]]);
  });

  it('knows which statements take a strong lock', async () => {
    const { parsedStatements } = await import('../src/lint/trees.js');
    const lockOf = async (sql: string) =>
      (await parsedStatements([{ statements: [{ sql, line: 1, column: 1, hash: '' }] }]))[0]?.[0]?.facts.lock?.mode;
    expect(await lockOf('CREATE INDEX i ON t (a)')).toBe('SHARE');
    expect(await lockOf('CREATE INDEX CONCURRENTLY i ON t (a)')).toBeUndefined();
    expect(await lockOf('ALTER TABLE t VALIDATE CONSTRAINT c')).toBeUndefined();
    expect(await lockOf('ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id) NOT VALID')).toBe('SHARE ROW EXCLUSIVE');
    expect(await lockOf('TRUNCATE t')).toBe('ACCESS EXCLUSIVE');
    expect(await lockOf('VACUUM FULL t')).toBe('ACCESS EXCLUSIVE');
    expect(await lockOf('VACUUM t')).toBeUndefined();
    expect(await lockOf('REINDEX TABLE t')).toBe('SHARE');
    expect(await lockOf('REINDEX TABLE CONCURRENTLY t')).toBeUndefined();
    expect(await lockOf('DROP TABLE t')).toBe('ACCESS EXCLUSIVE');
    expect(await lockOf('DROP INDEX CONCURRENTLY i')).toBeUndefined();
    expect(await lockOf('CREATE TABLE x (id int REFERENCES users (id))')).toBe('SHARE ROW EXCLUSIVE');
    expect(await lockOf('CREATE TABLE x (id int PRIMARY KEY)')).toBeUndefined();
    expect(await lockOf('LOCK TABLE t IN ACCESS SHARE MODE')).toBeUndefined();
  });
});

describe('tenantify lint (the built CLI)', () => {
  const dropped = dropAfterAll();
  const plans = [
    '.',
    ...readdirSync(`${repo}fixtures`)
      .filter((d) => readdirSync(`${repo}fixtures/${d}`).includes('migrations'))
      .map((d) => `fixtures/${d}`),
  ];

  it('lints the top-level plan and the seed plans clean: every finding carries a reason', async () => {
    expect(plans.length).toBe(5);
    for (const dir of plans) {
      const result = await runCli(['lint', '--json', '--dir', `${repo}${dir}`]);
      expect(result.code, `${dir}: ${result.stderr}`).toBe(0);
      const doc = JSON.parse(result.stdout) as { findings: Finding[]; squawk: { available: boolean } };
      expect(doc.squawk.available).toBe(true);
      expect(
        doc.findings.filter((f) => !f.allowed),
        dir,
      ).toEqual([]);
      for (const f of doc.findings) expect(f.reason?.length ?? 0, `${dir} ${f.file}:${f.line}`).toBeGreaterThan(30);
    }
  });

  it('exits 3 on an error-level finding, with one JSON document and a table naming unit, file, line and rule', async () => {
    const dir = writePlan(risky);
    const json = await runCli(['lint', '--json', '--dir', dir]);
    expect(json.code).toBe(3);
    const doc = JSON.parse(json.stdout) as { findings: Finding[] };
    expect(doc.findings.map(brief)).toEqual(expected);
    const text = await runCli(['lint', '--dir', dir]);
    expect(text.code).toBe(3);
    expect(text.stdout).toContain('migrations/0002_plain_index.sql:3');
    expect(text.stdout).toContain('require-concurrent-index-creation');
    expect(text.stdout).toMatch(/6 errors, 1 warning in 7 units/);
  });

  it("without squawk, says so once and runs tenantify's own rules", async () => {
    const dir = writePlan(risky);
    const result = await runCli(['lint', '--json', '--dir', dir], { env: { TENANTIFY_SQUAWK: '/nonexistent/squawk' } });
    expect(result.code).toBe(3);
    expect(result.stderr.match(/squawk is not available/g)).toHaveLength(1);
    expect(result.stderr).toContain('TENANTIFY_SQUAWK=/nonexistent/squawk does not exist');
    const doc = JSON.parse(result.stdout) as { findings: Finding[]; squawk: { available: boolean } };
    expect(doc.squawk.available).toBe(false);
    expect(doc.findings.map(brief)).toEqual(expected.filter((f) => f.source === 'tenantify'));
  });

  it('refuses an allow without a reason, naming the file and line', async () => {
    const dir = writePlan({
      'migrations/0001_x.sql':
        '-- tenantify:lock-timeout 5s\n-- tenantify:allow require-concurrent-index-creation\nCREATE INDEX i ON users (email);\n',
    });
    const result = await runCli(['lint', '--dir', dir]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/migrations\/0001_x\.sql:2: bad value "require-concurrent-index-creation" for tenantify:allow/);
  });

  it('plan shows the findings as a column, counts them, and plan --json carries them', async () => {
    const dir = writePlan(risky);
    const text = await runCli(['plan', '--dir', dir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('changing-column-type (line 2)');
    expect(text.stdout).toMatch(/7 units; 7 to run; 7 lint findings \(tenantify lint shows the rewrites\)\./);
    const json = await runCli(['plan', '--json', '--dir', dir]);
    expect(json.code).toBe(0);
    expect((JSON.parse(json.stdout) as { findings: Finding[] }).findings.map(brief)).toEqual(expected);
  });

  it('unbatched-update-large-table: from the catalog with -d, skipped without', async () => {
    const db = dropped(await freshDatabase('lint'));
    await query(
      db.url,
      `CREATE TABLE accounts (id bigint PRIMARY KEY, plan text);
      INSERT INTO accounts SELECT g, 'free' FROM generate_series(1, 3000) g;
      CREATE TABLE tiny (id bigint PRIMARY KEY, plan text);
      INSERT INTO tiny SELECT g, 'free' FROM generate_series(1, 10) g;
      ANALYZE accounts; ANALYZE tiny;`,
    );
    const dir = writePlan({
      'tenantify.config.json': JSON.stringify({ lint: { largeTableRows: 1000 } }),
      'backfills/0001_all_at_once.sql': `UPDATE accounts SET plan = 'pro';\nDELETE FROM tiny WHERE id > 5;\n`,
      'backfills/0002_batched.sql': `-- tenantify:batch accounts key=id size=500\nUPDATE accounts SET plan = 'team' WHERE id > $1 AND id <= $2;\n`,
    });
    const withDb = await runCli(['lint', '--json', '--dir', dir, '-d', db.url]);
    expect(withDb.code).toBe(3);
    const doc = JSON.parse(withDb.stdout) as { findings: Finding[]; tableSizes: string };
    expect(doc.tableSizes).toBe('catalog');
    expect(doc.findings.map(brief)).toEqual([
      {
        unit: '0001_all_at_once',
        file: 'backfills/0001_all_at_once.sql',
        line: 1,
        rule: 'unbatched-update-large-table',
        level: 'error',
        source: 'tenantify',
      },
    ]);
    expect(doc.findings[0]?.message).toMatch(/about 3,000 rows.*tenantify:batch accounts key=id/);
    const offline = await runCli(['lint', '--json', '--dir', dir]);
    expect(offline.code).toBe(0);
    expect(JSON.parse(offline.stdout)).toMatchObject({ findings: [], tableSizes: 'skipped' });
  });
});

describe('apply and lint.level', () => {
  const dropped = dropAfterAll();
  const legacy = `CREATE TABLE users (id bigint PRIMARY KEY, email text);
    INSERT INTO users SELECT g, 'u' || g || '@example.com' FROM generate_series(1, 200) g;`;
  const index = `-- tenantify:lock-timeout 5s\nCREATE INDEX users_email_idx ON users (email);\n`;
  const indexes = async (url: string) =>
    (await query<{ indexname: string }>(url, "SELECT indexname FROM pg_indexes WHERE tablename = 'users' ORDER BY 1")).map(
      (r) => r.indexname,
    );
  const ledger = async (url: string) =>
    (await query<{ n: number }>(url, "SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'tenantify'"))[0]?.n;

  it('with lint.level error, refuses a unit with an error-level finding before anything runs (exit 2)', async () => {
    const db = dropped(await freshDatabase('lintapply'));
    await query(db.url, legacy);
    const dir = writePlan({
      'tenantify.config.json': JSON.stringify({ lint: { level: 'error' } }),
      'migrations/0001_create.sql': 'CREATE TABLE teams (id bigint PRIMARY KEY);\n',
      'migrations/0002_index.sql': index,
    });
    const result = await runCli(['apply', '-d', db.url, '--dir', dir]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('lint: 0002_index (migrations/0002_index.sql:2) breaks require-concurrent-index-creation');
    expect(result.stderr).toContain('tenantify:allow');
    expect(await indexes(db.url)).toEqual(['users_pkey']);
    expect(await query(db.url, "SELECT to_regclass('teams') AS t")).toEqual([{ t: null }]);
    expect(await ledger(db.url)).toBe(0);
  });

  it('applies the same unit when the unit allows the rule, when squawk is missing, or by default', async () => {
    const allowed = `-- tenantify:allow require-concurrent-index-creation users is small and the index builds in milliseconds\n${index}`;
    const cases: { files: Record<string, string>; env?: Record<string, string> }[] = [
      { files: { 'tenantify.config.json': JSON.stringify({ lint: { level: 'error' } }), 'migrations/0001_index.sql': allowed } },
      {
        files: { 'tenantify.config.json': JSON.stringify({ lint: { level: 'error' } }), 'migrations/0001_index.sql': index },
        env: { TENANTIFY_SQUAWK: '/nonexistent/squawk' },
      },
      { files: { 'migrations/0001_index.sql': index } },
    ];
    for (const c of cases) {
      const db = dropped(await freshDatabase('lintapply'));
      await query(db.url, legacy);
      const result = await runCli(['apply', '-d', db.url, '--dir', writePlan(c.files), '--no-snapshot'], { env: c.env });
      expect(result.code, result.stderr).toBe(0);
      expect(await indexes(db.url)).toEqual(['users_email_idx', 'users_pkey']);
      if (c.env) expect(result.stderr).toMatch(/squawk is not available.*tenantify's own rules only/);
    }
  });
});
