import { UsageError } from '../../errors.js';
import type { CommonOptions } from '../common.js';

export default async function tenancyCheckCommand(_options: CommonOptions): Promise<number> {
  throw new UsageError('tenancy check is not built yet');
}
