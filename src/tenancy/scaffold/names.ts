/**
 * The names the scaffold gives what it creates (indexes, constraints, triggers, functions,
 * the tables that keep detached or deleted rows). PostgreSQL cuts a name at 63 bytes, not
 * characters: a name built from a long or multi-byte table name is cut here, in bytes, and
 * ends with a hash of the whole so two long names never become one (nor the table's own
 * name, which IF NOT EXISTS would then skip). Pure.
 */
import { splitTableName } from '../sql-text.js';
import type { TableName } from '../types.js';

/** NAMEDATALEN - 1: the longest name PostgreSQL keeps. */
export const maxNameBytes = 63;
const hashLength = 8;

/** A PostgreSQL name from parts joined by `_`, cut to 63 bytes with a short hash of the whole when too long. */
export function pgName(...parts: string[]): string {
  const name = parts.join('_');
  if (Buffer.byteLength(name) <= maxNameBytes) return name;
  return `${cutToBytes(name, maxNameBytes - hashLength - 1)}_${hash(name)}`;
}

/**
 * A table in the scaffold's own schema that keeps rows of `table` (`what`: unresolved,
 * conflicts...): named by the table as stored, so `"Order"` and `order` keep theirs apart; a
 * table outside public also carries its schema and a hash of its full name (`a.b_c` and
 * `a_b.c` read alike).
 */
export function keptTableName(table: TableName, ...what: string[]): string {
  const { schema, table: bare } = splitTableName(table);
  if (schema === undefined || schema === 'public') return pgName(bare, ...what);
  const suffix = [hash(table), ...what].join('_');
  return `${cutToBytes(`${schema}_${bare}`, maxNameBytes - Buffer.byteLength(suffix) - 1)}_${suffix}`;
}

/** The longest start of `text` that fits in `bytes` bytes of UTF-8, never half a character. */
export function cutToBytes(text: string, bytes: number): string {
  let used = 0;
  let end = 0;
  for (const ch of text) {
    const size = Buffer.byteLength(ch);
    if (used + size > bytes) break;
    used += size;
    end += ch.length;
  }
  return text.slice(0, end);
}

/** Eight hex digits of a name: the same for the same name in every run (unit files are compared across scaffolds). */
export function hash(name: string): string {
  let h = 0;
  for (const ch of name) h = (Math.imul(h, 31) + ch.charCodeAt(0)) | 0;
  return (h >>> 0).toString(16).padStart(hashLength, '0');
}
