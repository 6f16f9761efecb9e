/**
 * One throwaway PostgreSQL for the whole suite (or TENANTIFY_TEST_DATABASE_URL); every test
 * file gets fresh databases of its own from it.
 */
import type { TestProject } from 'vitest/node';
import { startThrowawayPostgres } from '../../src/db/throwaway.js';

declare module 'vitest' {
  export interface ProvidedContext {
    serverUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startThrowawayPostgres({
    url: process.env['TENANTIFY_TEST_DATABASE_URL'],
    log: (line) => process.stderr.write(`${line}\n`),
  });
  project.provide('serverUrl', server.url);
  return async () => server.close();
}
