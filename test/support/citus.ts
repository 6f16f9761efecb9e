/** The Citus tests' one condition: the extension installed for the local PostgreSQL. */
import { describe } from 'vitest';
import { findCitus } from '../../src/db/throwaway.js';

const found = findCitus();

/** Why the Citus tests cannot run here, or undefined when they can. */
export const citusMissing: string | undefined = 'missing' in found ? found.missing : undefined;

/** A describe that runs only where Citus is installed; skipped, its title says why. */
export function describeWithCitus(title: string, body: () => void): void {
  describe.skipIf(citusMissing !== undefined)(`${title}${citusMissing ? ` (skipped: ${citusMissing})` : ''}`, body);
}
