/** `tenancy scaffold`'s pure core: the analysis and the catalog in, the plan's units as text out. */
export { scaffoldPlan, keepSchema, type ScaffoldUnit, type ScaffoldOptions } from './plan.js';
