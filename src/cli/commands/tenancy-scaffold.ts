import { UsageError } from '../../errors.js';
import type { CommonOptions } from '../common.js';

export default async function tenancyScaffoldCommand(_options: CommonOptions): Promise<number> {
  throw new UsageError('tenancy scaffold is not built yet');
}
