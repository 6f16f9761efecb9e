import { defineConfig } from 'vitest/config';
import LongestFirst from './test/support/sequencer.js';

/**
 * Two tiers. `fast` (test/fast/): the pure cores (planner, parsers, the foreign-key graph,
 * SQL text, policy analysis), no database and no built CLI: `npm run test:fast`, seconds.
 * `db` (the rest of test/): against one throwaway PostgreSQL for the whole run, a fresh
 * database per test; some start the built CLI. `npm test` runs both.
 */
export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    sequence: { sequencer: LongestFirst },
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'fast', include: ['test/fast/**/*.test.ts'] } },
      {
        extends: true,
        test: { name: 'db', include: ['test/**/*.test.ts'], exclude: ['test/fast/**'], globalSetup: ['test/support/global-setup.ts'] },
      },
    ],
  },
});
