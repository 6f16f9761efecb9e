import { main } from './program.js';

// No top-level await: the bundle bin/tenantify runs is CommonJS, for V8's code cache.
main(process.argv).catch((error: unknown) => {
  process.exitCode = 1;
  console.error(error);
});
