import { NotBuiltError } from '../../errors.js';

export default async function verify(): Promise<number> {
  throw new NotBuiltError('verify', 'issue 4');
}
