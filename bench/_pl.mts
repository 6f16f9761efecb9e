import { generatePlans } from './plans.js';
import * as lpq from 'libpg-query';
const plans = generatePlans(200);
const t0 = performance.now();
const { loadProject } = await import('../src/app/project.js').catch(() => ({} as any));
const t1 = performance.now();
const { loadPlan } = await import('../src/plan/load.js');
const t2 = performance.now();
console.log('import load.ts', (t2 - t1).toFixed(1));
for (let i = 0; i < 3; i++) { const s = performance.now(); await loadPlan(plans.tenantify, { retries: 3, batch: {}, guards: [], ledgerSchema: 'tenantify' } as never); console.log('loadPlan', (performance.now() - s).toFixed(1)); }
await lpq.loadModule();
const text = "CREATE TABLE bench_t0001 (\n  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n  tenant_id bigint NOT NULL,\n  name text NOT NULL,\n  created_at timestamptz NOT NULL DEFAULT now()\n);\nCREATE INDEX x ON bench_t0001 (tenant_id, created_at);\nCOMMENT ON TABLE bench_t0001 IS 'x';";
let s = performance.now(); for (let i = 0; i < 200; i++) lpq.parseSync(text); console.log('200 parseSync body', (performance.now() - s).toFixed(1));
s = performance.now(); for (let i = 0; i < 200; i++) lpq.parseSync('SELECT id FROM bench_t0001'); console.log('200 parseSync verify', (performance.now() - s).toFixed(1));
