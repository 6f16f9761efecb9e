import { UsageError } from '../../errors.js';
import type { CommonOptions } from '../common.js';

export default async function repairCommand(_options: CommonOptions): Promise<number> {
  throw new UsageError('repair is not built yet');
}
