/**
 * Runs the longest test files first, so the two workers finish together. Vitest does this
 * from its own cache of the last run's durations; a fresh clone (CI) has no cache and vitest
 * falls back to the largest file first, which started the 85-second kill test last and left
 * one worker idle for its whole length. `test/durations.json` is that cache's figures,
 * committed: `npm run test:durations` rewrites it from the last run. A file not in either
 * (a new one) runs first: it may be slow, and it is the one being worked on.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const recorded = JSON.parse(readFileSync(new URL('../durations.json', import.meta.url), 'utf8')) as Record<string, number>;

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const duration = (file: TestSpecification): number => {
      const key = `${file.project.name}:${relative(this.ctx.config.root, file.moduleId)}`;
      return this.ctx.cache.getFileTestResults(key)?.duration ?? (recorded[key] ?? Infinity) * 1000;
    };
    return [...files].sort((a, b) => {
      if (a.project.name !== b.project.name) return a.project.name < b.project.name ? -1 : 1;
      return duration(b) - duration(a);
    });
  }
}
