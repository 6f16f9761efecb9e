/**
 * The peer tools bench/overhead compares with (dbmate, node-pg-migrate), installed on first
 * use into bench/.tools (git-ignored), pinned. They are not devDependencies: dbmate's
 * per-platform optional packages leave package-lock.json in a state `npm ci` refuses.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const peerVersions = { dbmate: '2.36.0', 'node-pg-migrate': '9.0.0' } as const;
const toolsDir = fileURLToPath(new URL('./.tools/', import.meta.url));

export function ensurePeers(): { dbmateBinary: string; nodePgMigrateBin: string } {
  const pgmBin = join(toolsDir, 'node_modules', 'node-pg-migrate', 'bin', 'node-pg-migrate.js');
  const dbmatePackage = join(toolsDir, 'node_modules', 'dbmate', 'package.json');
  if (!existsSync(pgmBin) || !existsSync(dbmatePackage)) {
    process.stderr.write(`installing the peer tools into ${toolsDir} ...\n`);
    const specs = Object.entries(peerVersions).map(([name, version]) => `${name}@${version}`);
    execFileSync('npm', ['install', '--prefix', toolsDir, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', ...specs], {
      stdio: 'inherit',
    });
  }
  const require = createRequire(join(toolsDir, 'noop.js'));
  const { resolveBinary } = require('dbmate') as { resolveBinary: () => string };
  return { dbmateBinary: resolveBinary(), nodePgMigrateBin: pgmBin };
}
