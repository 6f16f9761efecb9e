import type { UnitContext } from '../plan/define.js';
import type { ExecContext } from './context.js';

export function unitContext(ctx: ExecContext, unitId: string): UnitContext {
  return { unitId, log: (message) => ctx.reporter.note(`${unitId}: ${message}`) };
}
