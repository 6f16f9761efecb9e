import { NotBuiltError } from '../../errors.js';

export default async function snapshots(): Promise<number> {
  throw new NotBuiltError('snapshots', 'issue 5');
}
