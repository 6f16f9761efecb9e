import { UsageError } from '../../errors.js';
import type { CommonOptions } from '../common.js';

export default async function lintCommand(_options: CommonOptions): Promise<number> {
  throw new UsageError('lint is not built yet');
}
