import { mkdir, writeFile, access } from 'node:fs/promises';
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
    ['tenantify.config.json', `${JSON.stringify({ ledgerSchema: 'tenantify', snapshotDir: '.tenantify/snapshots', lockTimeout: '5s', retries: 3 }, null, 2)}\n`],
    ['migrations/0001_create_organizations.sql', example],
    ['rollbacks/0001_create_organizations.sql', exampleRollback],
  ];
  for (const [name, text] of files) {
    const path = join(root, name);
    if (await access(path).then(() => true, () => false)) continue;
    await writeFile(path, text);
    created.push(name);
  }
  if (out.json) out.result({ directory: root, created });
  else {
    out.line(created.length > 0 ? `Scaffolded ${root}:` : `${root} already has a plan; nothing to add.`);
    for (const name of created) out.line(`  ${name}`);
    if (created.length > 0) out.line('Next: `tenantify plan -d <database>` to see it against your database.');
  }
  return 0;
}
