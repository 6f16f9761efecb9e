/**
 * Partitioned tables and tables walked by physical ranges: what the scaffold writes where
 * PostgreSQL does not allow the plain form without a long lock. Pure text generation.
 *
 * On a partitioned table (PostgreSQL 15):
 * - a foreign key cannot be added NOT VALID to the parent ("not yet supported on partitioned
 *   tables"), so the key's foreign key is added to each partition, NOT VALID, and validated
 *   partition by partition;
 * - CREATE INDEX CONCURRENTLY is refused on the parent: the index is made on the parent ONLY
 *   (invalid, empty), built CONCURRENTLY on each partition and attached; the parent's index is
 *   valid once every partition's is attached;
 * - a CHECK NOT VALID on the parent reaches every partition; it is validated partition by
 *   partition (each under SHARE UPDATE EXCLUSIVE, in its own transaction) and then on the
 *   parent, which finds every partition validated and scans nothing; SET NOT NULL on the
 *   parent then proves each partition from its validated check (no scan).
 */
import { quoteLiteral } from '../sql-text.js';
import { bare, pgName, physicalKey, q, qt, qualifiedIn, type KeyedTable, type ScaffoldModel } from './model.js';
import { wrap, type UnitText } from './render.js';

/** The names the scaffold gives a partition's own key objects. */
export function partitionNames(t: KeyedTable, partition: string) {
  return { fk: pgName(bare(partition), t.keyColumn, 'fkey'), index: pgName(bare(partition), t.keyColumn, 'idx') };
}

/** The key's foreign key, NOT VALID: on the table, or on each partition of a partitioned one. */
export function keyForeignKeysNotValid(m: ScaffoldModel, t: KeyedTable, name: string): string[] {
  const add = (table: string, constraint: string): string =>
    `ALTER TABLE ${qt(table)} ADD CONSTRAINT ${q(constraint)} FOREIGN KEY (${q(t.keyColumn)}) REFERENCES ${m.tenantsTarget} NOT VALID`;
  if (t.partitions.length === 0) return [add(t.name, name)];
  return t.partitions.map((p) => add(p, partitionNames(t, p).fk));
}

export const partitionedKeyWhy = (t: KeyedTable): string =>
  `${t.name} is partitioned: PostgreSQL refuses a foreign key NOT VALID on a partitioned table, so each partition gets its own (${t.partitions.length}); a partition attached later needs one too.`;

export function partitionedKeyIndex(t: KeyedTable, index: string, lockSafe: string[], noSnapshot: string): [UnitText, UnitText] {
  const parent = qualifiedIn(t.name, index);
  return [
    {
      about: [
        `Indexes ${t.name}.${t.keyColumn} partition by partition, before the backfill (it serves the backfill's lookups, tenant queries and the foreign key's checks).`,
        '',
        ...wrap(
          `Safe on a live database: PostgreSQL cannot build an index CONCURRENTLY on a partitioned table, so the index is made on ${bare(t.name)} ONLY (empty, no scan), built CONCURRENTLY on each partition (reads and writes go on; hence no transaction) and attached, a catalog change under a brief lock. Once every partition's index is attached, the parent's is valid. Run again after a kill, each statement finds its work done.`,
        ),
      ],
      directives: [
        'transaction off',
        noSnapshot,
        ...lockSafe,
        "allow require-concurrent-index-creation the index ON ONLY the parent is empty and builds nothing; each partition's is built CONCURRENTLY",
      ],
      body: [
        `CREATE INDEX IF NOT EXISTS ${q(index)} ON ONLY ${qt(t.name)} (${q(t.keyColumn)})`,
        ...t.partitions.flatMap((p) => {
          const own = partitionNames(t, p).index;
          return [
            `CREATE INDEX CONCURRENTLY IF NOT EXISTS ${q(own)} ON ${qt(p)} (${q(t.keyColumn)})`,
            `ALTER INDEX ${parent} ATTACH PARTITION ${qualifiedIn(p, own)}`,
          ];
        }),
      ],
      verifies: [
        {
          name: `${index} is valid (every partition's index attached)`,
          sql: `SELECT ${quoteLiteral(index)} AS index\n WHERE NOT EXISTS (SELECT FROM pg_index WHERE indexrelid = to_regclass(${quoteLiteral(parent)}) AND indisvalid)`,
        },
      ],
    },
    {
      about: [
        `Drops the index on ${t.name}.${t.keyColumn} with its partitions' indexes.`,
        '',
        ...wrap(
          'A partitioned index cannot be dropped CONCURRENTLY: the drop takes a brief ACCESS EXCLUSIVE lock on each partition (waiting at most the lock timeout, then retried); dropping an index scans nothing.',
        ),
      ],
      directives: [
        noSnapshot,
        ...lockSafe,
        'allow require-concurrent-index-deletion PostgreSQL cannot drop a partitioned index CONCURRENTLY; the drop scans nothing and waits at most the lock timeout',
      ],
      body: [`DROP INDEX IF EXISTS ${parent}`],
    },
  ];
}

/** VALIDATE of the key's foreign keys (per partition) and of the NOT NULL check (per partition, then the parent). */
export function partitionedValidate(
  m: ScaffoldModel,
  t: KeyedTable,
  check: string | undefined,
  lockSafe: string[],
  noSnapshot: string,
): [UnitText, UnitText] {
  const fks = t.partitions.map((p) => ({ table: p, name: partitionNames(t, p).fk }));
  const checks = check ? [...t.partitions.map((p) => ({ table: p, name: check })), { table: t.name, name: check }] : [];
  const all = [...fks, ...checks];
  const addFk = (table: string, name: string): string =>
    `ALTER TABLE ${qt(table)} ADD CONSTRAINT ${q(name)} FOREIGN KEY (${q(t.keyColumn)}) REFERENCES ${m.tenantsTarget} NOT VALID`;
  return [
    {
      about: [
        `Validates the key's foreign key on each partition of ${t.name}${check ? `, and ${check} partition by partition, then on ${bare(t.name)}` : ''}.`,
        '',
        ...wrap(
          `Safe on a live database: VALIDATE CONSTRAINT scans under SHARE UPDATE EXCLUSIVE, which lets the app read and write throughout; each partition is its own statement and transaction (hence no transaction for the unit), so no lock is held across partitions.${check ? ` The parent's VALIDATE then finds every partition validated and scans nothing.` : ''}`,
        ),
      ],
      directives: ['transaction off', noSnapshot, ...lockSafe],
      body: all.map((c) => `ALTER TABLE ${qt(c.table)} VALIDATE CONSTRAINT ${q(c.name)}`),
      verifies: [
        {
          name: `${t.name}'s key constraints validated on every partition`,
          sql: `SELECT conrelid::regclass AS "table", conname FROM pg_constraint\n WHERE conrelid IN (${[t.name, ...t.partitions].map((p) => `${quoteLiteral(qt(p))}::regclass`).join(', ')})\n   AND conname IN (${[...new Set(all.map((c) => c.name))].map(quoteLiteral).join(', ')}) AND NOT convalidated`,
        },
      ],
    },
    {
      about: [
        `Makes the key's foreign keys on ${t.name}'s partitions${check ? ` and ${check}` : ''} NOT VALID again, as before the unit (each dropped and added back NOT VALID, no scan).`,
      ],
      directives: [noSnapshot, ...lockSafe],
      body: [
        ...fks.flatMap((c) => [`ALTER TABLE ${qt(c.table)} DROP CONSTRAINT ${q(c.name)}`, addFk(c.table, c.name)]),
        ...(check
          ? [
              `ALTER TABLE ${qt(t.name)} DROP CONSTRAINT ${q(check)}`,
              `ALTER TABLE ${qt(t.name)} ADD CONSTRAINT ${q(check)} CHECK (${q(t.keyColumn)} IS NOT NULL) NOT VALID`,
            ]
          : []),
      ],
    },
  ];
}

/** The backfill's range condition and batch directive: keyset over the batch key, or physical block ranges. */
export function batchRange(t: KeyedTable, table: string, size: number): { range: string; directive: string; how: string } {
  if (t.batchKey === physicalKey) {
    return {
      range: `t.ctid >= format('(%s,0)', $1::bigint + 1)::tid AND t.ctid < format('(%s,0)', $2::bigint + 1)::tid\n   AND `,
      directive: `batch ${table} key=${physicalKey} size=${size}`,
      how: `${t.name} has no primary key nor unique NOT NULL column, so the batches walk physical ranges of its blocks (TID range scans), each its own short transaction, resumable after a kill`,
    };
  }
  return {
    range: `t.${q(t.batchKey)} > $1 AND t.${q(t.batchKey)} <= $2\n   AND `,
    directive: `batch ${table} key=${q(t.batchKey)} size=${size}`,
    how: `keyset batches over ${t.batchKey}, each its own short transaction, resumable after a kill`,
  };
}
