import { NotBuiltError } from '../../errors.js';

export default async function rehearse(): Promise<number> {
  throw new NotBuiltError('rehearse', 'issue 8');
}
