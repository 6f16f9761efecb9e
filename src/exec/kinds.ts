/** Which runner a script takes, decided here once: batched, statement by statement, TypeScript, or one transaction. */
import { batchedRunner } from './batched.js';
import { statementsRunner } from './statements.js';
import { transactionalRunner } from './transactional.js';
import { typescriptOutsideRunner, typescriptRunner } from './typescript.js';
import type { Runner } from './context.js';
import type { Script } from '../plan/types.js';

export function runnerFor(script: Script): Runner {
  if (script.options.batch) return batchedRunner;
  if (script.definition?.type === 'unit') return script.options.transaction ? typescriptRunner : typescriptOutsideRunner;
  if (!script.options.transaction) return statementsRunner;
  return transactionalRunner;
}
