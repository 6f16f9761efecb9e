import { UsageError } from '../../errors.js';
import type { CommonOptions } from '../common.js';

export default async function tenancyAnalyzeCommand(_options: CommonOptions): Promise<number> {
  throw new UsageError('tenancy analyze is not built yet');
}
