/** Destructive commands ask on a terminal and need --yes otherwise. */
import { createInterface } from 'node:readline/promises';
import { UsageError } from '../errors.js';

export interface ConfirmRequest {
  /** --yes was passed. */
  yes: boolean;
  question: string;
  /** Without a terminal and without --yes: what refuses to run, and the lines that say what it would have done. */
  refusal: string;
  details?: string[];
}

export function hasTerminal(): boolean {
  return Boolean(process.stdin.isTTY && process.stdout.isTTY);
}

export async function confirmDestructive(request: ConfirmRequest): Promise<boolean> {
  if (request.yes) return true;
  if (!hasTerminal())
    throw new UsageError(request.refusal, {
      code: 'confirmation-required',
      hint: 'there is no terminal to ask on: pass --yes to confirm; nothing was touched',
      details: request.details ?? [],
    });
  // The prompt goes to stderr so that stdout stays one JSON document under --json.
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const abort = new AbortController();
  rl.on('SIGINT', () => abort.abort());
  try {
    const answer = await rl.question(`${request.question} [y/N] `, { signal: abort.signal });
    return /^y(es)?$/i.test(answer.trim());
  } catch {
    process.stderr.write('\n');
    return false;
  } finally {
    rl.close();
  }
}
