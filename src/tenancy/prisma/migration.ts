/**
 * The Prisma side of a scaffolded upgrade, as text: the migration a fresh environment runs
 * (`prisma migrate deploy` on an empty database) and the plan unit that records it in
 * `_prisma_migrations` on the database tenantify upgrades, so Prisma never runs it there.
 */
import { createHash } from 'node:crypto';
import { quoteLiteral } from '../sql-text.js';
import { renderUnit, wrap } from '../scaffold/render.js';

export interface MigrationSource {
  /** The plan unit's id, e.g. `0002_users_organization_id`. */
  unit: string;
  kind: 'migration' | 'backfill';
  /** The unit's body statements, as its parser split them (no sections, no trailing `;`). */
  statements: string[];
}

/** Statements that move or read rows: a fresh environment has none to move. */
const dataStatement = /^\s*(INSERT|UPDATE|DELETE|WITH|SELECT|SET|RESET|ANALYZE|VACUUM)\b/i;
const addConstraint = /\bADD CONSTRAINT\s+("(?:[^"]|"")+"|[\w$]+)/i;
const validateConstraint = /^\s*ALTER TABLE\s+.+?\s+VALIDATE CONSTRAINT\s+("(?:[^"]|"")+"|[\w$]+)\s*$/is;
const dropConstraint = /^\s*ALTER TABLE\s+.+?\s+DROP CONSTRAINT\s+(?:IF EXISTS\s+)?("(?:[^"]|"")+"|[\w$]+)\s*$/is;

/**
 * The upgrade's net DDL in plan order: what the migration units leave behind, built at once
 * on empty tables. Backfills and other row work are left out (no rows); a constraint added
 * NOT VALID and validated later is added valid; a check added only to prove NOT NULL and
 * dropped after is left out; indexes are built without CONCURRENTLY (Prisma runs a
 * migration as one script in one transaction).
 */
export function prismaMigrationSql(sources: MigrationSource[], about: string): string {
  const migrations = sources.filter((s) => s.kind === 'migration');
  const all = migrations.flatMap((s) => s.statements);
  const validated = new Set(all.flatMap((s) => validateConstraint.exec(s)?.[1] ?? []));
  const dropped = new Set(all.flatMap((s) => dropConstraint.exec(s)?.[1] ?? []));

  const out: string[] = [...about.split('\n').map((l) => (l ? `-- ${l}` : '--')), ''];
  for (const source of migrations) {
    const kept = source.statements.flatMap((statement) => {
      if (dataStatement.test(statement)) return [];
      const validate = validateConstraint.exec(statement)?.[1];
      if (validate !== undefined) return [];
      const drop = dropConstraint.exec(statement)?.[1];
      if (drop !== undefined && all.some((s) => addConstraint.exec(s)?.[1] === drop)) return [];
      const added = addConstraint.exec(statement)?.[1];
      if (added !== undefined && dropped.has(added)) return [];
      let sql = statement.trim().replace(/\b(INDEX)\s+CONCURRENTLY\b/gi, '$1');
      if (added !== undefined && validated.has(added)) sql = sql.replace(/\s+NOT VALID\s*$/i, '');
      return [sql];
    });
    if (kept.length === 0) continue;
    out.push(`-- From the plan's unit ${source.unit}:`);
    for (const sql of kept) out.push(`${sql};`, '');
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/** Prisma's checksum of a migration: the SHA-256 of the file's bytes, in hex. */
export function prismaChecksum(bytes: string | Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface RecordUnit {
  name: string;
  summary: string;
  sql: string;
  rollback: string;
}

/**
 * The plan's last unit: `migration` recorded in `_prisma_migrations` as applied (finished,
 * one step, Prisma's checksum); its rollback deletes exactly that row.
 */
export function recordUnit(migration: string, checksum: string, table = 'public._prisma_migrations'): RecordUnit {
  const name = quoteLiteral(migration);
  const sum = quoteLiteral(checksum);
  const summary = `Records the Prisma migration ${migration} as applied in ${table}.`;
  return {
    name: 'prisma_record_migration',
    summary,
    sql: renderUnit({
      about: [
        summary,
        '',
        ...wrap(
          `The migration holds the upgrade's net DDL for environments Prisma builds from scratch (prisma migrate deploy). This database got the same schema from the units before this one: recording the migration as applied (its checksum, finished, one step, as Prisma writes it) keeps prisma migrate deploy from running it here, and prisma migrate status up to date.`,
        ),
        '',
        'Safe on a live database: one row inserted into a table only Prisma reads.',
      ],
      directives: ['snapshot none'],
      body: [
        `INSERT INTO ${table} (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)\nVALUES (gen_random_uuid()::text, ${sum}, now(), ${name}, NULL, NULL, now(), 1)`,
      ],
      prechecks: [
        {
          name: `${migration} is not recorded yet`,
          sql: `SELECT migration_name FROM ${table} WHERE migration_name = ${name}`,
        },
      ],
      verifies: [
        {
          name: `${migration} is recorded as applied`,
          sql: `SELECT 'not recorded' AS problem\n WHERE NOT EXISTS (SELECT FROM ${table} WHERE migration_name = ${name} AND checksum = ${sum} AND finished_at IS NOT NULL AND rolled_back_at IS NULL)`,
        },
      ],
    }),
    rollback: renderUnit({
      about: [
        `Deletes the record of the Prisma migration ${migration}: ${table} is as it was before the upgrade.`,
        '',
        'Safe on a live database: one row deleted from a table only Prisma reads.',
      ],
      directives: ['snapshot none'],
      body: [`DELETE FROM ${table} WHERE migration_name = ${name} AND checksum = ${sum}`],
      verifies: [
        {
          name: `${migration} is not recorded`,
          sql: `SELECT migration_name FROM ${table} WHERE migration_name = ${name}`,
        },
      ],
    }),
  };
}
