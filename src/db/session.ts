/** What a connection is to the rest of tenantify (opened by connection.ts). */
import type pg from 'pg';
import type { Kysely } from 'kysely';

/**
 * A Session is one pg client plus a Kysely bound to that same client, so the ledger,
 * TypeScript units and raw statements all share the unit's transaction.
 */
export interface Session {
  readonly client: pg.Client;
  readonly db: Kysely<any>;
  /** The server process serving this session. */
  readonly backendPid: number;
  readonly serverVersion: number;
  readonly description: string;
  /** The URL it was opened with, for further connections. Never print it: use description. */
  readonly url: string | undefined;
  /** Why the connection went away (the socket's error, or its end), once it has; undefined while it is there. */
  readonly lost: Error | undefined;
  close(): Promise<void>;
}
