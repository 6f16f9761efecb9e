import type { ChalkInstance } from 'chalk';
import type { TenantifyError } from '../errors.js';
import { redact } from '../db/redact.js';

/** error: message / details / hint, as a DBA reads it at 3 a.m. */
export function formatError(error: TenantifyError, style: ChalkInstance): string {
  const lines = [`${style.red.bold('error:')} ${error.message}`];
  for (const detail of error.details) lines.push(`  ${detail}`);
  if (error.hint) lines.push(`${style.cyan('hint:')} ${error.hint}`);
  return redact(lines.join('\n'));
}
