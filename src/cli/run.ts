/** The one place that turns errors into exit codes. */
import { ExitCode, isTenantifyError } from '../errors.js';
import { redact, rememberGivenSecrets } from '../db/redact.js';
import { createOutput } from '../ui/output.js';
import { formatError } from '../ui/format-error.js';
import type { CommonOptions } from './common.js';

export async function runCommand(options: CommonOptions, body: () => Promise<number>): Promise<number> {
  // Before anything can fail: whatever text carries these passwords later is masked (redact.ts).
  rememberGivenSecrets(options.databaseUrl);
  try {
    return await body();
  } catch (error) {
    const out = createOutput(options);
    if (isTenantifyError(error)) {
      out.error(formatError(error, out.style));
      if (out.json)
        out.result({
          error: {
            code: error.code,
            message: redact(error.message),
            exitCode: error.exitCode,
            hint: error.hint ?? null,
            details: error.details.map(redact),
          },
        });
      return error.exitCode;
    }
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    out.error(redact(`tenantify hit an unexpected error; this is a bug, please report it with the lines below.\n${text}`));
    if (out.json)
      out.result({
        error: {
          code: 'bug',
          message: redact(error instanceof Error ? error.message : String(error)),
          exitCode: ExitCode.unitFailed,
          bug: true,
        },
      });
    return ExitCode.unitFailed;
  }
}
