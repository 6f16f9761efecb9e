/**
 * `npm run test:durations`: test/durations.json (seconds per test file, for the sequencer)
 * from vitest's cache of the last full run. Run after `npm test` when files were added or
 * became much slower or faster.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const cacheDir = join('node_modules', '.vite', 'vitest');
const [hash] = readdirSync(cacheDir);
if (!hash) throw new Error(`no vitest cache under ${cacheDir}: run \`npm test\` first`);
const { results } = JSON.parse(readFileSync(join(cacheDir, hash, 'results.json'), 'utf8')) as {
  results: [string, { duration: number }][];
};
const seconds = Object.fromEntries(
  results
    .filter(([, r]) => r.duration > 0)
    .map(([key, r]) => [key, Math.round(r.duration / 100) / 10] as const)
    .sort(([, a], [, b]) => b - a),
);
writeFileSync('test/durations.json', `${JSON.stringify(seconds, null, 2)}\n`);
console.log(`test/durations.json: ${Object.keys(seconds).length} files`);
