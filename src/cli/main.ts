import { main } from './program.js';
import { redact } from '../db/redact.js';
import { provideUnitApi } from '../plan/unit-api.js';

// A TypeScript unit's `import ... from 'tenantify'` gets the API bundled here (plan/unit-api.ts), loaded once a plan has one.
provideUnitApi(() => import('../api.js'));

// No top-level await: the bundle bin/tenantify runs is CommonJS, for V8's code cache.
main(process.argv).catch((error: unknown) => {
  process.exitCode = 1;
  console.error(redact(error instanceof Error ? (error.stack ?? error.message) : String(error)));
});
