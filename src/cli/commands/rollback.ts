import { NotBuiltError } from '../../errors.js';

export default async function rollback(): Promise<number> {
  throw new NotBuiltError('rollback', 'issue 4');
}
