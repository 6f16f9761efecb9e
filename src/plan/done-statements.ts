/**
 * The statements of a `transaction off` script that ran, as the ledger records them after
 * each one: the hash of each (a list in `statements`), or, for a script too large to hold its
 * statements (a streamed unit, sql-unit.ts), their count and a digest of those hashes in
 * order (`statementsDone`), so recording the 100,000th statement does not write 100,000
 * hashes. Either says where a resumed run starts and whether the file still starts with them.
 */
import { createHash, type Hash } from 'node:crypto';
import { isStreamed, type Statements } from './types.js';

/** A streamed script's statements done: how many, and sha256 of their hashes, each followed by a line break. */
export interface DoneDigest {
  count: number;
  digest: string;
}

export class DoneStatements {
  private readonly hashes: string[] | undefined;
  private readonly chain: Hash | undefined;
  count = 0;

  constructor(statements: Statements) {
    if (isStreamed(statements)) this.chain = createHash('sha256');
    else this.hashes = [];
  }

  add(hash: string): void {
    this.count++;
    this.hashes?.push(hash);
    this.chain?.update(`${hash}\n`);
  }

  /** The ledger's progress of the unit (`statements`) or of its rollback (`revertStatements`). */
  progress(key: 'statements' | 'revertStatements'): { statements?: string[]; statementsDone?: DoneDigest } & {
    revertStatements?: string[];
    revertStatementsDone?: DoneDigest;
  } {
    if (this.hashes) return { [key]: this.hashes };
    return { [`${key}Done`]: { count: this.count, digest: (this.chain as Hash).copy().digest('hex') } };
  }
}

/** Whether the script still starts with the statements recorded done (walking only those). */
export function startsWithDone(statements: Statements, done: string[] | DoneDigest): boolean {
  const count = Array.isArray(done) ? done.length : done.count;
  const chain = createHash('sha256');
  let seen = 0;
  if (count > 0) {
    for (const statement of statements) {
      if (Array.isArray(done) && statement.hash !== done[seen]) return false;
      chain.update(`${statement.hash}\n`);
      if (++seen >= count) break;
    }
  }
  return seen === count && (Array.isArray(done) || chain.digest('hex') === done.digest);
}

/** How many statements are recorded done. */
export function doneCount(done: string[] | DoneDigest | undefined): number {
  return done === undefined ? 0 : Array.isArray(done) ? done.length : done.count;
}
