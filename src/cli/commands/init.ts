import { mkdir, writeFile, access, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { CommonOptions } from '../common.js';
import { createOutput } from '../../ui/output.js';

const example = `-- tenantify:lock-timeout 5s
-- Directives go above the first statement; see README.md for the list.
CREATE TABLE organizations (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- tenantify:verify organizations exists and is empty
SELECT 1 FROM organizations LIMIT 0;
`;

const exampleRollback = `DROP TABLE organizations;
`;

export default async function init(options: CommonOptions): Promise<number> {
  const out = createOutput(options);
  const root = resolve(options.dir);
  const created: string[] = [];
  for (const folder of ['migrations', 'backfills', 'rollbacks']) {
    await mkdir(join(root, folder), { recursive: true });
  }
  const files: [string, string][] = [
    [
      'tenantify.config.json',
      `${JSON.stringify({ ledgerSchema: 'tenantify', snapshotDir: '.tenantify/snapshots', lockTimeout: '5s', retries: 3 }, null, 2)}\n`,
    ],
    ['migrations/0001_create_organizations.sql', example],
    ['rollbacks/0001_create_organizations.sql', exampleRollback],
  ];
  for (const [name, text] of files) {
    const path = join(root, name);
    if (
      await access(path).then(
        () => true,
        () => false,
      )
    )
      continue;
    await writeFile(path, text);
    created.push(name);
  }
  if (await ignoreSnapshots(root)) created.push('.gitignore');
  if (out.json) out.result({ directory: root, created });
  else {
    out.line(created.length > 0 ? `Scaffolded ${root}:` : `${root} already has a plan; nothing to add.`);
    for (const name of created) out.line(`  ${name}`);
    if (created.length > 0) out.line('Next: `tenantify plan -d <database>` to see it against your database.');
  }
  return 0;
}

const ignoreLine = '/.tenantify/';

/**
 * Snapshots (`.tenantify/snapshots`) hold the tables' data: the plan directory's .gitignore
 * keeps them out of the repository. True when it was written or extended.
 */
async function ignoreSnapshots(root: string): Promise<boolean> {
  const path = join(root, '.gitignore');
  const current = await readFile(path, 'utf8').catch(() => undefined);
  const lines = (current ?? '').split(/\r?\n/).map((l) => l.trim());
  if (lines.some((l) => l === ignoreLine || l === '.tenantify/' || l === '.tenantify' || l === '/.tenantify')) return false;
  const block = `# tenantify: pg_dump snapshots of the tables' data, never to be committed\n${ignoreLine}\n`;
  await writeFile(path, current === undefined ? block : `${current}${current.endsWith('\n') || current === '' ? '' : '\n'}${block}`);
  return true;
}
