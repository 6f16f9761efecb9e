/**
 * The package's entry, `import ... from 'tenantify'`: the programmatic API (api.ts). Loading
 * it also lends the API to TypeScript units, whose own `import ... from 'tenantify'` then
 * gets this module instead of a second copy of the package (plan/unit-api.ts).
 */
import * as api from './api.js';
import { provideUnitApi } from './plan/unit-api.js';

export * from './api.js';

provideUnitApi(() => Promise.resolve(api));
