/**
 * tenantify's own lint rules, pure functions over a parsed unit, and the level and safe
 * rewrite tenantify gives squawk's rules. One entry per rule: a new rule is one addition here.
 */
import type { Script } from '../plan/types.js';
import type { StatementFacts } from './locks.js';
import type { LintLevel, RuleSetting } from './types.js';
import { withThousands } from '../numbers.js';

/** A statement of a file with what its parse tree tells. */
export interface ParsedStatement {
  line: number;
  sql: string;
  facts: StatementFacts;
}

export interface RuleContext {
  /** The config's lockTimeout, in ms. */
  configLockTimeoutMs: number | undefined;
  /** Estimated rows per table (pg_class.reltuples), when a database was given. */
  tableRows: Map<string, number> | undefined;
  largeTableRows: number;
}

export interface RuleHit {
  line: number;
  message: string;
}

export interface OwnRule {
  name: string;
  level: LintLevel;
  catches: string;
  rewrite: string;
  check(script: Script, statements: ParsedStatement[], context: RuleContext): RuleHit[];
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

export const ownRules: OwnRule[] = [
  {
    name: 'strong-lock-without-lock-timeout',
    level: 'error',
    catches:
      'a statement that takes a SHARE or stronger lock on an existing table (ALTER TABLE, CREATE INDEX without CONCURRENTLY, DROP, TRUNCATE, VACUUM FULL, REINDEX, CLUSTER, CREATE TRIGGER, a foreign key to an existing table...) in a unit with no lock timeout',
    rewrite:
      '`-- tenantify:lock-timeout 5s` (with `retries`), or `lockTimeout` in tenantify.config.json: the statement gives up and is retried instead of queueing every query on the table behind it',
    check(script, statements, context) {
      const effective = script.options.lockTimeoutMs ?? context.configLockTimeoutMs;
      if (effective !== undefined && effective > 0) return [];
      const created = new Set<string>();
      let setInBody = 0;
      const risky: { line: number; text: string }[] = [];
      for (const s of statements) {
        const { lockTimeoutMs: timeout, created: table, lock } = s.facts;
        if (timeout !== undefined) setInBody = timeout;
        if (table) created.add(table);
        if (!lock || setInBody > 0) continue;
        const existing = lock.tables.filter((t) => t && !created.has(t));
        if (existing.length === 0) continue;
        risky.push({ line: s.line, text: `${lock.what} takes ${lock.mode} on ${existing.join(', ')}` });
      }
      const [first] = risky;
      if (!first) return [];
      const more = risky.length > 1 ? ` (and ${plural(risky.length - 1, 'more statement')} in this file)` : '';
      return [
        {
          line: first.line,
          message: `${first.text} with no lock timeout${more}: while it waits behind a long transaction, every query on the table queues behind it. Add \`-- tenantify:lock-timeout 5s\` with \`-- tenantify:retries 3\` (or lockTimeout in tenantify.config.json).`,
        },
      ];
    },
  },
  {
    name: 'unbatched-update-large-table',
    level: 'error',
    catches:
      'an UPDATE or DELETE in a unit without a `batch` directive, on a table with more rows than `lint.largeTableRows` (pg_class.reltuples; only with -d)',
    rewrite:
      'a backfill with `-- tenantify:batch <table> key=id size=10000` and the statement bounded by `$1 < id AND id <= $2`: each batch commits on its own, no row stays locked for long',
    check(script, statements, context) {
      if (script.options.batch || !context.tableRows) return [];
      const created = new Set<string>();
      const hits: RuleHit[] = [];
      for (const s of statements) {
        const { created: table, rowWrite: write } = s.facts;
        if (table) created.add(table);
        if (!write || created.has(write.table)) continue;
        const rows = context.tableRows.get(write.table);
        if (rows === undefined || rows <= context.largeTableRows) continue;
        hits.push({
          line: s.line,
          message: `${write.verb} of ${write.table} (about ${withThousands(Math.round(rows))} rows) in one transaction: every row it touches stays locked until the unit commits. Move it to backfills/ with \`-- tenantify:batch ${write.table} key=id size=10000\` and bound it by \`id > $1 AND id <= $2\`.`,
        });
      }
      return hits;
    },
  },
];

/**
 * squawk's rules as tenantify sees them. `error`: the statement holds a lock that blocks
 * reads or writes of an existing table for as long as it scans or rewrites it. Rules not
 * named here are warnings. `off`: squawk's advice that tenantify makes moot (timeouts come
 * from directives, a unit is retried and resumed as a whole or statement by statement) or
 * that is schema taste rather than lock safety; `lint.rules` turns any of them back on.
 */
export const squawkRules: Record<string, { level: RuleSetting; rewrite?: string }> = {
  'adding-not-nullable-field': {
    level: 'error',
    rewrite:
      'add `CHECK (col IS NOT NULL) NOT VALID`, `VALIDATE CONSTRAINT` in a later unit, then SET NOT NULL (PostgreSQL 12+ uses the constraint and skips the scan)',
  },
  'require-concurrent-index-creation': {
    level: 'error',
    rewrite: '`CREATE INDEX CONCURRENTLY` in a unit with `-- tenantify:transaction off`',
  },
  'require-concurrent-index-deletion': {
    level: 'error',
    rewrite: '`DROP INDEX CONCURRENTLY` in a unit with `-- tenantify:transaction off`',
  },
  'constraint-missing-not-valid': {
    level: 'error',
    rewrite: 'add the constraint `NOT VALID`, then `VALIDATE CONSTRAINT` in a later unit (it takes SHARE UPDATE EXCLUSIVE only)',
  },
  'adding-foreign-key-constraint': {
    level: 'error',
    rewrite: 'add the foreign key `NOT VALID`, then `VALIDATE CONSTRAINT` in a later unit',
  },
  'changing-column-type': {
    level: 'error',
    rewrite: 'add a new column, fill it with a batched backfill, then switch readers and drop the old one',
  },
  'adding-field-with-default': {
    level: 'error',
    rewrite: 'add the column without the volatile default, fill it with a batched backfill, then SET DEFAULT',
  },
  'disallowed-unique-constraint': {
    level: 'error',
    rewrite: '`CREATE UNIQUE INDEX CONCURRENTLY` (transaction off), then `ADD CONSTRAINT ... UNIQUE USING INDEX`',
  },
  'adding-serial-primary-key-field': {
    level: 'error',
    rewrite: 'build the unique index CONCURRENTLY, then `ADD CONSTRAINT ... PRIMARY KEY USING INDEX`',
  },
  'adding-primary-key-constraint': {
    level: 'error',
    rewrite: 'build the unique index CONCURRENTLY, then `ADD CONSTRAINT ... PRIMARY KEY USING INDEX`',
  },
  'ban-drop-database': { level: 'error' },
  'require-lock-timeout': { level: 'off' },
  'require-statement-timeout': { level: 'off' },
  'require-timeout-settings': { level: 'off' },
  'prefer-robust-stmts': { level: 'off' },
  'ban-concurrent-index-creation-in-transaction': { level: 'off' },
  'prefer-bigint-over-int': { level: 'off' },
  'prefer-bigint-over-smallint': { level: 'off' },
  'prefer-identity': { level: 'off' },
  'prefer-text-field': { level: 'off' },
  'prefer-timestamp-tz': { level: 'off' },
  'prefer-timestamptz': { level: 'off' },
  'ban-char-field': { level: 'off' },
  // Every file already parses with PostgreSQL's own grammar (else it is a plan error): a
  // syntax error from squawk's parser is squawk's gap, not the unit's.
  'syntax-error': { level: 'off' },
};

/** In a rollback file, dropping what the unit added is the rollback's purpose. */
export const rulesMootInRollbacks = new Set(['ban-drop-table', 'ban-drop-column']);

/** A rule's level after the config's `lint.rules`. */
export function ruleSetting(rule: string, source: 'squawk' | 'tenantify', configured: Record<string, RuleSetting>): RuleSetting {
  const own = configured[rule];
  if (own) return own;
  if (source === 'tenantify') return ownRules.find((r) => r.name === rule)?.level ?? 'warning'; // unused-allow: a warning
  return squawkRules[rule]?.level ?? 'warning';
}
