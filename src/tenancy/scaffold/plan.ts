/**
 * The tenant upgrade plan as units, from the analysis and the catalog: pure text
 * generation, in the contract's order (docs/tenancy.md, `tenancy scaffold`):
 *
 *   1. the tenants table (when new), filled from the owner in batches
 *   2. per tenant table, parents first: key column + foreign key NOT VALID + trigger;
 *      an index on the key built CONCURRENTLY
 *   3. the policies for unresolved rows and conflicts (`fail` is a precheck of the first unit)
 *   4. batched backfills, parents first
 *   5. foreign keys validated; NOT NULL through a CHECK NOT VALID, validated, SET NOT NULL
 *   6. --composite: unique (key, id) and foreign keys that include the key
 *   7. --rls: row level security enabled and forced, a policy on the key
 *   8. --citus: primary keys (key, id), reference tables, tables distributed by the key
 *      (citus.ts); it makes the keys composite itself, in place of step 6
 */
import type { Catalog, ConsistencyEdge, Hop, TenancyAnalysis } from '../types.js';
import { quoteLiteral } from '../sql-text.js';
import { Aliases, conflictPredicate, joinOn, keyFromParents, ownerOf, rowIdList, unresolvedPredicate } from './expressions.js';
import { citusUnits, type ScaffoldedKey } from './citus.js';
import { conflictQuery, parentsKeyVerify, unresolvedQuery } from './set-based.js';
import { bare, pgName, physicalKey, q, qt, qualifiedIn, ScaffoldModel, words, type KeyedTable, type ScaffoldOptions } from './model.js';
import { keptTableName } from './names.js';
import { renderSection, renderUnit, wrap, type Section, type UnitText } from './render.js';
import { batchRange, keyForeignKeysNotValid, partitionedKeyIndex, partitionedKeyWhy, partitionedValidate } from './partitions.js';
import { viewsInvoker } from './views.js';

export type { ScaffoldOptions } from './model.js';

export interface ScaffoldUnit {
  /** The file name's part after the number, e.g. `hosts_organization_id`. */
  name: string;
  kind: 'migration' | 'backfill';
  /** The contract's step: 1..7, and 8 for the Citus placement (docs/tenancy.md, `tenancy scaffold`). */
  step: number;
  /** One line for the terminal. */
  summary: string;
  sql: string;
  rollback: string;
}

/** The schema that keeps what `detach` and `delete` change, so their rollback restores it. */
export const keepSchema = 'tenantify_scaffold';

/**
 * A brief lock is waited for at most this long, then the unit lets go and is retried after a
 * growing pause (steps.ts: 250 ms doubling to 8 s): while it waits, the app's queries on the
 * table queue behind it, so this is the longest wait the app can see from it.
 */
const lockTimeoutMs = 500;
const lockRetries = 10;
const lockSafe = [`lock-timeout ${lockTimeoutMs}ms`, `retries ${lockRetries}`];
const briefLock = `waiting at most ${lockTimeoutMs} ms, then retried`;
/** What a batch aims at (batched.ts's default target duration). */
const batchTargetMs = 300;
const noSnapshot = 'snapshot none';
/** The upgrade's own writes change nothing but the key: the app's triggers do not fire for them (app-triggers.ts). */
const triggersOff = 'triggers off';
const triggersOffWhy = wrap(
  "The app's triggers (an updated_at stamp, an audit row) do not fire for these writes: the unit's sessions run with session_replication_role = replica (triggers off), so no legacy column changes; the app's own writes still fire them. apply refuses to start when the role may not set it.",
);

export function scaffoldPlan(analysis: TenancyAnalysis, catalog: Catalog, options: ScaffoldOptions): ScaffoldUnit[] {
  const m = new ScaffoldModel(analysis, catalog, options);
  const units: ScaffoldUnit[] = [];
  const add = (name: string, kind: ScaffoldUnit['kind'], step: number, up: UnitText, down: UnitText): void => {
    units.push({
      name,
      kind,
      step,
      summary: (up.about[0] ?? name).replace(/:$/, '.'),
      sql: renderUnit(withLongestWait(up)),
      rollback: renderUnit(withLongestWait(down)),
    });
  };

  const adding = m.keyed.filter((k) => k.addsKey);
  const tenantsTable = analysis.tenants;

  // 1. The tenants table.
  if (m.createsTenants) add(`create_${m.slug(tenantsTable)}`, 'migration', 1, ...createTenants(m));

  // 2. Key column, foreign key NOT VALID and trigger per table, parents first; then its index.
  for (const t of adding) {
    add(`${m.slug(t.name)}_${keySlug(t)}`, 'migration', 2, ...keyColumn(m, t, m.tenantsPk));
    if (t.isOwner) add(`fill_${m.slug(tenantsTable)}`, 'backfill', 1, ...fillTenants(m, m.tenantsPk));
  }
  for (const t of m.keyed) {
    if (hasKeyIndex(t)) continue;
    add(
      `${m.slug(t.name)}_${keySlug(t)}_index`,
      'migration',
      2,
      ...(t.partitions.length > 0 ? partitionedKeyIndex(t, keyNames(t).index, lockSafe, noSnapshot) : keyIndex(t)),
    );
  }

  // 3. Policies: conflicts first (they may change what derives), then deletes of unresolved rows, children first.
  const failChecks: Section[] = [];
  for (const t of m.keyed) {
    for (const edge of t.analysis.consistency) {
      if (edge.policy === 'fail') failChecks.push(conflictCheck(m, t, edge));
      else if (edge.policy === 'detach') add(`${m.slug(t.name)}_${colsSlug(edge.columns)}_detach`, 'backfill', 3, ...detach(m, t, edge));
      else if (edge.policy === 'delete')
        add(
          `${m.slug(t.name)}_${colsSlug(edge.columns)}_delete_conflicts`,
          'backfill',
          3,
          ...deleteRows(
            m,
            t,
            'conflicts',
            (names) => conflictPredicate(m, t, edge, 't', names),
            `rows whose ${edge.columns.join(', ')} lands in another tenant than the row`,
          ),
        );
    }
  }
  for (const t of [...m.keyed].reverse()) {
    if (t.isOwner || !mayBeUnresolved(m, t)) continue;
    if (t.analysis.unresolvedPolicy === 'fail') failChecks.unshift(unresolvedCheck(m, t));
    else if (t.analysis.unresolvedPolicy === 'delete')
      add(
        `${m.slug(t.name)}_delete_unresolved`,
        'backfill',
        3,
        ...deleteRows(
          m,
          t,
          'unresolved',
          (names) => unresolvedPredicate(m, t, 't', names),
          `rows no path leads to a ${bare(analysis.owner)} row`,
        ),
      );
  }

  // 4. Backfills, parents first (the owner's came with the tenants table).
  // A partitioned table is walked partition by partition, each a unit of its own.
  for (const t of adding) {
    if (t.isOwner) continue;
    if (t.partitions.length === 0) add(`backfill_${m.slug(t.name)}_${keySlug(t)}`, 'backfill', 4, ...backfill(m, t));
    for (const p of t.partitions)
      add(`backfill_${m.slug(p)}_${keySlug(t)}`, 'backfill', 4, ...backfill(m, { ...t, name: p, partitions: [] }));
  }

  // 5. Foreign keys validated; NOT NULL without a long lock.
  for (const t of adding) {
    const keep = t.analysis.unresolvedPolicy === 'keep' && !t.isOwner;
    if (!keep) add(`${m.slug(t.name)}_${keySlug(t)}_check`, 'migration', 5, ...notNullCheck(t));
    add(
      `${m.slug(t.name)}_${keySlug(t)}_validate`,
      'migration',
      5,
      ...(t.partitions.length > 0
        ? partitionedValidate(m, t, keep ? undefined : keyNames(t).check, lockSafe, noSnapshot)
        : validate(m, t, keep)),
    );
    if (!keep) add(`${m.slug(t.name)}_${keySlug(t)}_not_null`, 'migration', 5, ...setNotNull(t));
  }

  // 6. Composite keys (with --citus, step 8 makes the primary keys and foreign keys composite).
  if (options.composite && !options.citus) {
    const edges = compositeEdges(m);
    const targets = new Map<string, { table: KeyedTable; columns: string[] }>();
    for (const e of edges) targets.set(`${e.to.name}(${e.referencedColumns.join(',')})`, { table: e.to, columns: e.referencedColumns });
    for (const { table, columns } of targets.values())
      add(`${m.slug(table.name)}_${keySlug(table)}_${colsSlug(columns)}_unique`, 'migration', 6, ...compositeUnique(table, columns));
    for (const t of m.keyed) {
      const mine = edges.filter((e) => e.from === t);
      if (mine.length === 0) continue;
      add(`${m.slug(t.name)}_tenant_foreign_keys`, 'migration', 6, ...compositeForeignKeys(t, mine));
      add(`${m.slug(t.name)}_tenant_foreign_keys_validate`, 'migration', 6, ...compositeValidate(t, mine));
    }
  }

  // 7. Row level security, and the views over tenant tables made to run as their invoker.
  if (options.rls) {
    for (const t of m.keyed) add(`${m.slug(t.name)}_row_level_security`, 'migration', 7, ...rowLevelSecurity(m, t));
    const views = viewsInvoker(m, lockSafe, noSnapshot);
    if (views) add('views_security_invoker', 'migration', 7, ...views);
  }

  // 8. Citus.
  if (options.citus) {
    const scaffolded: ScaffoldedKey[] = adding.map((t) => ({
      table: t.name,
      foreignKey: { name: keyNames(t).fk, definition: keyForeignKey(m, t) },
      trigger: { name: keyNames(t).trigger, create: keyTrigger(m, t) },
    }));
    for (const u of citusUnits(m, scaffolded)) add(u.name, 'migration', 8, u.up, u.down);
  }

  // `fail` policies: one precheck per table and edge, on the plan's first unit.
  const first = units[0];
  if (first && failChecks.length > 0) {
    const why = failChecks.some((c) => c.ranges)
      ? `${wrap(
          'The prechecks walk each table in ranges of its key (each its ranges line), one short query per range with a pause after it: none holds a snapshot, nor a core, for a whole scan beside the application.',
        )
          .map((line) => `-- ${line}`)
          .join('\n')}\n\n`
      : '';
    first.sql = `${first.sql.trimEnd()}\n\n${why}${failChecks.map((c) => renderSection('precheck', c)).join('\n\n')}\n`;
  }
  return units;
}

/**
 * The header's last line: the longest the legacy app's queries can wait behind the unit. A
 * brief lock is waited for at most the lock timeout (queries that arrive meanwhile queue
 * behind it), then held for a catalog change only; a batch holds the rows it writes until it
 * commits; a validation or a CONCURRENTLY build takes no lock that writes wait for.
 */
function withLongestWait(u: UnitText): UnitText {
  const batched = u.directives.some((d) => d.startsWith('batch ')) || u.body.some((b) => b.includes('COMMIT;'));
  const nonBlocking = u.body.every((b) => /\bVALIDATE CONSTRAINT\b|\bCONCURRENTLY\b|^CREATE (TABLE|SCHEMA)\b|^COMMENT ON\b/.test(b));
  let wait: string;
  if (batched)
    wait = `one batch: a write to a row of the batch in flight waits for its commit (batches aim at batch.targetDuration, ${batchTargetMs} ms unless configured, and at an eighth of it once the app has waited on one)`;
  else if (nonBlocking) wait = 'none (its lock lets the app read and write throughout)';
  else if (u.directives.includes(lockSafe[0] as string))
    wait = `${lockTimeoutMs} ms per try: queries on the table queue behind the unit while it waits for its lock (then it lets go, and is retried up to ${lockRetries} times after growing pauses); once granted, the lock lasts as long as the catalog change`;
  else wait = 'the rows it changes, for its one short transaction';
  return { ...u, about: [...u.about, '', ...wrap(`Longest wait the app can see: ${wait}.`)] };
}

// ---------------------------------------------------------------------------------------
// Step 1: the tenants table
// ---------------------------------------------------------------------------------------

function createTenants(m: ScaffoldModel): [UnitText, UnitText] {
  const a = m.analysis;
  const ownerType = m.table(a.owner).columns.find((c) => c.name === m.ownerPk)?.type ?? 'bigint';
  return [
    {
      about: [
        `Creates ${a.tenants}: one tenant per ${a.owner} row, mapped back by ${m.legacyColumn}.`,
        '',
        ...wrap(
          `Safe on a live database: a new, empty table; nothing else is locked. The rows come from ${bare(a.owner)} in batches once it has its key column and the trigger that gives every new ${bare(a.owner)} row its tenant.`,
        ),
      ],
      directives: [noSnapshot],
      body: [
        `CREATE TABLE ${qt(a.tenants)} (\n  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n  ${q(m.legacyColumn)} ${ownerType} NOT NULL UNIQUE,\n  created_at timestamptz NOT NULL DEFAULT now()\n)`,
        `COMMENT ON COLUMN ${qt(a.tenants)}.${q(m.legacyColumn)} IS ${quoteLiteral(`the ${a.owner} row this tenant was made from`)}`,
      ],
      verifies: [
        { name: `${a.tenants} exists`, sql: `SELECT 'missing' AS problem WHERE to_regclass(${quoteLiteral(qt(a.tenants))}) IS NULL` },
      ],
    },
    {
      about: [`Drops ${a.tenants} (the units after this one, rolled back first, removed every reference to it).`],
      directives: [noSnapshot, ...lockSafe],
      body: [`DROP TABLE ${qt(a.tenants)}`],
    },
  ];
}

function fillTenants(m: ScaffoldModel, tenantsPk: string): [UnitText, UnitText] {
  const a = m.analysis;
  const pk = q(m.ownerPk);
  const key = q(a.key);
  const legacy = q(m.legacyColumn);
  return [
    {
      about: [
        `Fills ${a.tenants} from ${a.owner}, one tenant per row, and sets ${bare(a.owner)}.${a.key}.`,
        '',
        ...wrap(
          `Safe on a live database: keyset batches over ${bare(a.owner)}.${m.ownerPk}, each its own short transaction, so no row is locked for long. Resumable and exactly once: a batch only takes ${bare(a.owner)} rows without a key, and ON CONFLICT finds the tenant a row already has. Rows the app inserts meanwhile get their tenant from the trigger.`,
        ),
        '',
        ...triggersOffWhy,
      ],
      directives: [noSnapshot, triggersOff, `batch ${qt(a.owner)} key=${pk} size=5000`],
      body: [
        `WITH tenant AS (\n  INSERT INTO ${qt(a.tenants)} (${legacy})\n  SELECT o.${pk} FROM ${qt(a.owner)} AS o\n   WHERE o.${pk} > $1 AND o.${pk} <= $2 AND o.${key} IS NULL\n   ORDER BY o.${pk}\n  ON CONFLICT (${legacy}) DO UPDATE SET ${legacy} = EXCLUDED.${legacy}\n  RETURNING ${q(tenantsPk)}, ${legacy}\n)\nUPDATE ${qt(a.owner)} AS o\n   SET ${key} = tenant.${q(tenantsPk)}\n  FROM tenant\n WHERE o.${pk} = tenant.${legacy}`,
      ],
      verifies: [
        {
          name: `every ${bare(a.owner)} row has its own tenant`,
          sql: `SELECT o.${pk} FROM ${qt(a.owner)} AS o\n  LEFT JOIN ${qt(a.tenants)} AS t ON t.${q(tenantsPk)} = o.${key}\n WHERE t.${legacy} IS DISTINCT FROM o.${pk}`,
        },
      ],
    },
    {
      about: [
        `Clears ${bare(a.owner)}.${a.key} in batches (the app's triggers do not fire). The tenants stay until the rollback of their table drops it;`,
        `applied again, this unit finds them (ON CONFLICT) and gives each row the same tenant.`,
        '',
        ...clearInBatchesWhy,
      ],
      directives: [noSnapshot, triggersOff, `batch ${qt(a.owner)} key=${pk} size=5000`],
      body: [`UPDATE ${qt(a.owner)} AS o\n   SET ${key} = NULL\n WHERE o.${pk} > $1 AND o.${pk} <= $2\n   AND o.${key} IS NOT NULL`],
    },
  ];
}

// ---------------------------------------------------------------------------------------
// Step 2: key column, foreign key NOT VALID, trigger; index
// ---------------------------------------------------------------------------------------

function keySlug(t: KeyedTable): string {
  return words(t.keyColumn);
}

function colsSlug(columns: string[]): string {
  return columns.map(words).join('_');
}

export function keyNames(t: KeyedTable) {
  const table = bare(t.name);
  return {
    fk: pgName(table, t.keyColumn, 'fkey'),
    check: pgName(table, t.keyColumn, 'not_null'),
    index: pgName(table, t.keyColumn, 'idx'),
    fn: pgName(table, 'set', t.keyColumn),
    trigger: pgName(table, 'set', t.keyColumn),
    policy: pgName(table, 'tenant_isolation'),
  };
}

/** The key's foreign key to the tenants table, as step 5 leaves it (validated). */
function keyForeignKey(m: ScaffoldModel, t: KeyedTable): string {
  return `FOREIGN KEY (${q(t.keyColumn)}) REFERENCES ${m.tenantsTarget}`;
}

/** The events the trigger that fills the key fires on: a new owner row, or a row inserted or re-parented. */
function keyTriggerEvents(m: ScaffoldModel, t: KeyedTable): string {
  if (t.isOwner) return 'BEFORE INSERT';
  const columns = [...new Set(m.firstHops(t).flatMap((h) => h.columns))];
  return `BEFORE INSERT OR UPDATE OF ${columns.map(q).join(', ')}`;
}

function keyTrigger(m: ScaffoldModel, t: KeyedTable): string {
  const n = keyNames(t);
  return `CREATE TRIGGER ${q(n.trigger)}\n  ${keyTriggerEvents(m, t)} ON ${qt(t.name)}\n  FOR EACH ROW EXECUTE FUNCTION ${qualifiedIn(t.name, n.fn)}()`;
}

function keyColumn(m: ScaffoldModel, t: KeyedTable, tenantsPk: string): [UnitText, UnitText] {
  const a = m.analysis;
  const n = keyNames(t);
  const key = q(t.keyColumn);
  const table = qt(t.name);
  const hops = m.firstHops(t);
  const fn = qualifiedIn(t.name, n.fn);
  let fnBody: string;
  let declare = '';
  let why: string;
  if (t.isOwner) {
    const legacy = q(m.legacyColumn);
    fnBody = [
      `  -- A new ${bare(a.owner)} row is a new tenant: create it (or find the one made for this id).`,
      `  IF NEW.${key} IS NULL THEN`,
      `    INSERT INTO ${qt(a.tenants)} (${legacy}) VALUES (NEW.${q(m.ownerPk)})`,
      `    ON CONFLICT (${legacy}) DO UPDATE SET ${legacy} = EXCLUDED.${legacy}`,
      `    RETURNING ${q(tenantsPk)} INTO NEW.${key};`,
      '  END IF;',
    ].join('\n');
    why = `A ${bare(a.owner)} row the app inserts gets a tenant of its own from the trigger, in the same statement (a failed insert leaves no tenant behind).`;
  } else {
    const columns = [...new Set(hops.flatMap((h) => h.columns))];
    fnBody = [
      `  parent_key := ${keyFromParents(m, t, 'NEW', '    ')};`,
      '  -- An inserted row without a key, or a re-parented row whose key the app left as it was,',
      "  -- takes its parent's. A key the app gives itself stands only if it is the parent's: a",
      '  -- row in another tenant than its parent is refused, not silently moved.',
      `  IF NEW.${key} IS NULL OR (TG_OP = 'UPDATE' AND NEW.${key} IS NOT DISTINCT FROM OLD.${key}) THEN`,
      `    NEW.${key} := parent_key;`,
      `  ELSIF parent_key IS NOT NULL AND NEW.${key} <> parent_key THEN`,
      `    RAISE EXCEPTION '%: % = % is not the tenant of the row''s parent (%)', TG_TABLE_NAME, ${quoteLiteral(t.keyColumn)}, NEW.${key}, parent_key`,
      `      USING ERRCODE = 'check_violation', HINT = ${quoteLiteral(`leave ${t.keyColumn} out (the trigger sets it), or give the parent's`)};`,
      '  END IF;',
    ].join('\n');
    declare = `DECLARE\n  parent_key ${m.keyType};\n`;
    why = `Rows the legacy app inserts or re-parents (${columns.join(', ')}) take their parent's key from the trigger, during the upgrade and after it, so the app keeps working unchanged and NOT NULL holds; a key the app sets itself must be the parent's, or the write is refused.`;
  }
  return [
    {
      about: [
        `Adds ${t.name}.${t.keyColumn} (nullable, no default), its foreign key NOT VALID, and the trigger that fills it.`,
        '',
        ...wrap(
          `Safe on a live database: a nullable column without a default is a catalog change (no rewrite), NOT VALID skips the scan, and the brief locks are waited for at most ${lockTimeoutMs} ms each (then the unit lets go and is retried). ${why}${t.partitions.length > 0 ? ` ${partitionedKeyWhy(t)}` : ''}`,
        ),
      ],
      directives: [noSnapshot, ...lockSafe],
      body: [
        `ALTER TABLE ${table} ADD COLUMN ${key} ${m.keyType}`,
        ...keyForeignKeysNotValid(m, t, n.fk),
        `CREATE FUNCTION ${fn}() RETURNS trigger\nLANGUAGE plpgsql AS $$\n${declare}BEGIN\n${fnBody}\n  RETURN NEW;\nEND\n$$`,
        keyTrigger(m, t),
      ],
      verifies: [
        {
          name: `${t.name} has ${t.keyColumn} and its trigger`,
          // With --citus the trigger goes when the table is distributed (the app writes the key from then on).
          sql: `SELECT 'trigger missing' AS problem\n WHERE NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = ${quoteLiteral(table)}::regclass AND tgname = ${quoteLiteral(n.trigger)})${
            m.options.citus
              ? `\n   AND NOT EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = ${quoteLiteral(table)}::regclass)`
              : ''
          }`,
        },
      ],
    },
    {
      about: [`Drops the trigger, its function and ${t.name}.${t.keyColumn} (with its foreign key).`],
      directives: [noSnapshot, ...lockSafe],
      body: [
        `DROP TRIGGER IF EXISTS ${q(n.trigger)} ON ${table}`,
        `DROP FUNCTION IF EXISTS ${fn}()`,
        `ALTER TABLE ${table} DROP COLUMN IF EXISTS ${key}`,
      ],
    },
  ];
}

function hasKeyIndex(t: KeyedTable): boolean {
  return t.catalog.indexes.some((i) => i.valid && !i.partial && i.columns[0] === t.keyColumn);
}

function keyIndex(t: KeyedTable): [UnitText, UnitText] {
  const n = keyNames(t);
  const schema = qualifiedIn(t.name, n.index);
  return [
    {
      about: [
        `Indexes ${t.name}.${t.keyColumn}, before the backfill (it serves the backfill's lookups, tenant queries and the foreign key's checks).`,
        '',
        ...wrap(
          'Safe on a live database: CREATE INDEX CONCURRENTLY lets the app read and write throughout (hence no transaction). A build that was killed leaves an INVALID index, which tenantify drops and builds again.',
        ),
      ],
      directives: ['transaction off', noSnapshot],
      body: [`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${q(n.index)} ON ${qt(t.name)} (${q(t.keyColumn)})`],
      verifies: [
        {
          name: `${n.index} is valid`,
          sql: `SELECT ${quoteLiteral(n.index)} AS index\n WHERE NOT EXISTS (SELECT FROM pg_index WHERE indexrelid = to_regclass(${quoteLiteral(schema)}) AND indisvalid)`,
        },
      ],
    },
    {
      about: [`Drops the index on ${t.name}.${t.keyColumn}, CONCURRENTLY (the app keeps writing).`],
      directives: ['transaction off', noSnapshot],
      body: [`DROP INDEX CONCURRENTLY IF EXISTS ${schema}`],
    },
  ];
}

// ---------------------------------------------------------------------------------------
// Step 3: policies
// ---------------------------------------------------------------------------------------

/** A table's rows may miss their owner: a nullable hop, or a foreign key not validated, on its paths. */
function mayBeUnresolved(m: ScaffoldModel, t: KeyedTable): boolean {
  if (t.analysis.via.length === 0) return true;
  const hops = t.analysis.via;
  return hops.some((h) => h.nullable || m.table(h.table).foreignKeys.some((fk) => fk.name === h.constraint && !fk.validated));
}

function unresolvedCheck(m: ScaffoldModel, t: KeyedTable): Section {
  const walk = checkRanges(t);
  return {
    name: `${t.name}: every row leads to a ${bare(m.analysis.owner)} row (unresolved: fail)`,
    sql: unresolvedQuery(m, t, walk?.range),
    ...(walk ? { ranges: walk.ranges } : {}),
  };
}

function conflictCheck(m: ScaffoldModel, t: KeyedTable, edge: ConsistencyEdge): Section {
  const walk = checkRanges(t);
  return {
    name: `${t.name}: ${edge.columns.join(', ')} stays in the row's tenant (conflicts: fail)`,
    sql: conflictQuery(m, t, edge, walk?.range),
    ...(walk ? { ranges: walk.ranges } : {}),
  };
}

/** Rows a precheck reads per range: an index range scan of a few tens of milliseconds. */
const checkRangeSize = 50_000;

/**
 * A precheck walks its table in ranges of the backfill's key (the same keyset, or blocks for a
 * table without a key), one short query each: none holds a snapshot or a core for a whole scan
 * beside the application. A partitioned table without a key has no blocks of its own to walk:
 * its precheck stays one query.
 */
function checkRanges(t: KeyedTable): { range: string; ranges: string } | undefined {
  if (t.partitions.length > 0 && t.batchKey === physicalKey) return undefined;
  const { range, directive } = batchRange(t, qt(t.name), checkRangeSize);
  return { range, ranges: directive.replace(/^batch /, '') };
}

const dropKeepSchemaIfEmpty = `DO $$\nBEGIN\n  IF NOT EXISTS (SELECT FROM pg_class WHERE relnamespace = '${keepSchema}'::regnamespace) THEN\n    DROP SCHEMA ${keepSchema};\n  END IF;\nEND\n$$`;

function detach(m: ScaffoldModel, t: KeyedTable, edge: ConsistencyEdge): [UnitText, UnitText] {
  const kept = `${keepSchema}.${q(keptTableName(t.name, colsSlug(edge.columns), 'detached'))}`;
  const table = qt(t.name);
  const ids = t.rowId;
  const cols = edge.columns;
  const match = ids.map((c) => `t.${q(c)} = k.${q(c)}`).join(' AND ');
  // With --citus the verify reads its subqueries' tables through CTEs, so that it still runs once they are distributed (Aliases).
  const reads = new Aliases(m.options.citus);
  return [
    {
      about: [
        `Detaches ${t.name}.${cols.join(', ')} where it points into another tenant (conflicts: detach): the reference is set to NULL.`,
        '',
        ...wrap(
          `The rows' ids and old values are kept in ${kept}, so the rollback puts them back exactly. Safe on a live database: only the conflicting rows are updated, in one short transaction; a row the app changed meanwhile keeps the app's value.`,
        ),
        '',
        ...triggersOffWhy,
      ],
      directives: [noSnapshot, triggersOff],
      body: [
        `CREATE SCHEMA IF NOT EXISTS ${keepSchema}`,
        `CREATE TABLE ${kept} AS\nSELECT ${[...ids, ...cols.filter((c) => !ids.includes(c))].map((c) => `t.${q(c)}`).join(', ')}\n  FROM ${table} AS t\n WHERE ${conflictPredicate(m, t, edge, 't')}`,
        `UPDATE ${table} AS t\n   SET ${cols.map((c) => `${q(c)} = NULL`).join(', ')}\n  FROM ${kept} AS k\n WHERE ${match}${cols.map((c) => `\n   AND t.${q(c)} IS NOT DISTINCT FROM k.${q(c)}`).join('')}`,
      ],
      verifies: [
        {
          name: `no ${t.name}.${cols.join(', ')} points into another tenant`,
          sql: reads.withReads(`SELECT ${rowIdList(t, 't')} FROM ${table} AS t\n WHERE ${conflictPredicate(m, t, edge, 't', reads)}`),
        },
      ],
    },
    {
      about: [`Puts back the references the unit detached, from ${kept}, then drops that table (the app's triggers do not fire).`],
      directives: [noSnapshot, triggersOff],
      body: [
        `UPDATE ${table} AS t\n   SET ${cols.map((c) => `${q(c)} = k.${q(c)}`).join(', ')}\n  FROM ${kept} AS k\n WHERE ${match}${cols.map((c) => `\n   AND t.${q(c)} IS NULL`).join('')}`,
        `DROP TABLE ${kept}`,
        dropKeepSchemaIfEmpty,
      ],
    },
  ];
}

function deleteRows(
  m: ScaffoldModel,
  t: KeyedTable,
  what: 'unresolved' | 'conflicts',
  predicateWith: (names: Aliases) => string,
  description: string,
): [UnitText, UnitText] {
  const predicate = predicateWith(new Aliases());
  const reads = new Aliases(m.options.citus);
  const kept = `${keepSchema}.${q(keptTableName(t.name, what === 'unresolved' ? 'unresolved' : 'conflicts'))}`;
  const table = qt(t.name);
  return [
    {
      about: [
        `Deletes from ${t.name} the ${description} (${what}: delete).`,
        '',
        ...wrap(
          `Every deleted row is kept whole in ${kept}, so the rollback inserts them back exactly. Safe on a live database: one short transaction over those rows only. Rows of other tables that reference them follow their foreign keys' ON DELETE (CASCADE deletes them without a copy): look before applying. The app's triggers fire for these deletes (and for the rollback's inserts): foreign key actions are triggers too, and keeping them from firing would leave references to deleted rows.`,
        ),
      ],
      directives: [noSnapshot],
      body: [
        `CREATE SCHEMA IF NOT EXISTS ${keepSchema}`,
        `CREATE TABLE ${kept} (LIKE ${table})`,
        `WITH gone AS (\n  DELETE FROM ${table} AS t\n   WHERE ${predicate}\n  RETURNING t.*\n)\nINSERT INTO ${kept} SELECT * FROM gone`,
      ],
      verifies: [
        {
          name: `no ${what} rows left in ${t.name}`,
          sql: reads.withReads(`SELECT ${rowIdList(t, 't')} FROM ${table} AS t\n WHERE ${predicateWith(reads)}`),
        },
      ],
    },
    {
      about: [`Inserts back the rows the unit deleted, from ${kept}, then drops that table.`],
      directives: [noSnapshot],
      body: [`INSERT INTO ${table} OVERRIDING SYSTEM VALUE\nSELECT * FROM ${kept}`, `DROP TABLE ${kept}`, dropKeepSchemaIfEmpty],
    },
  ];
}

// ---------------------------------------------------------------------------------------
// Step 4: backfills
// ---------------------------------------------------------------------------------------

function backfill(m: ScaffoldModel, t: KeyedTable): [UnitText, UnitText] {
  const key = q(t.keyColumn);
  const table = qt(t.name);
  const hops = m.firstHops(t);
  const { range, directive, how } = batchRange(t, table, 5000);
  const batch = [directive];
  const single = hops.length === 1 ? (hops[0] as Hop) : undefined;
  const parentCol = single ? q(m.keyColumnOf(single.references)) : '';
  const body = single
    ? `UPDATE ${table} AS t\n   SET ${key} = p.${parentCol}\n  FROM ${qt(single.references)} AS p\n WHERE ${range}${joinOn('t', single, 'p')}\n   AND t.${key} IS NULL\n   AND p.${parentCol} IS NOT NULL`
    : `UPDATE ${table} AS t\n   SET ${key} = ${keyFromParents(m, t, 't', '   ')}\n WHERE ${range}t.${key} IS NULL\n   AND ${keyFromParents(m, t, 't', '   ')} IS NOT NULL`;
  const keep = t.analysis.unresolvedPolicy === 'keep';
  const chain = (path: Hop[]): string =>
    `${path.map((h) => `${bare(h.table)}.${h.columns.join(',')}`).join(' → ')} → ${bare(m.analysis.owner)}`;
  const pathText = [t.analysis.via, ...t.analysis.fallbacks]
    .filter((p) => p.length > 0)
    .map(chain)
    .join('; else ');
  // With --citus the join also matches the key, so that it stays on one shard once both tables are distributed;
  // along several parents, the subqueries read their tables through CTEs (Aliases).
  const reads = new Aliases(m.options.citus);
  const verify =
    single && m.options.citus
      ? `SELECT ${rowIdList(t, 't')} FROM ${table} AS t\n  LEFT JOIN ${qt(single.references)} AS p ON p.${parentCol} = t.${key} AND ${joinOn('t', single, 'p')}\n WHERE ${single.columns.map((c) => `t.${q(c)} IS NOT NULL`).join(' AND ')} AND p.${q(single.referencedColumns[0] as string)} IS NULL`
      : single
        ? `SELECT ${rowIdList(t, 't')} FROM ${table} AS t\n  LEFT JOIN ${qt(single.references)} AS p ON ${joinOn('t', single, 'p')}\n WHERE t.${key} IS DISTINCT FROM p.${parentCol}\n    OR ${skipped(m, t, new Aliases())}`
        : m.options.citus
          ? reads.withReads(
              `SELECT ${rowIdList(t, 't')} FROM ${table} AS t\n WHERE t.${key} IS DISTINCT FROM ${keyFromParents(m, t, 't', '  ', reads)}\n    OR ${skipped(m, t, reads)}`,
            )
          : parentsKeyVerify(m, t, skipped(m, t, new Aliases()));
  return [
    {
      about: [
        `Backfills ${t.name}.${t.keyColumn} from its parent${hops.length > 1 ? 's (first that resolves)' : ''}: ${pathText}.`,
        '',
        ...wrap(
          `Safe on a live database: ${how}; only rows without a key are touched, so it runs exactly once and never overwrites what the trigger set for rows the app wrote meanwhile. Every parent it reads (${m.parentsRead(t).map(bare).join(', ')}) was filled by an earlier unit.`,
        ),
        '',
        ...wrap(
          `The verify is one query over the whole table, on one snapshot, once the batches are done: it runs in the transaction that records the unit applied, so what the ledger keeps is the proof of one moment (and \`tenantify verify\` runs it again the same way). It reads; the app reads and writes throughout.`,
        ),
        ...(keep
          ? [
              '',
              ...wrap(
                `unresolved: keep. Rows no path leads to an owner keep a NULL ${t.keyColumn}, and the column stays nullable; \`tenancy check\` accepts them.`,
              ),
            ]
          : []),
        '',
        ...triggersOffWhy,
      ],
      directives: [noSnapshot, triggersOff, ...batch],
      body: [body],
      verifies: [{ name: `every ${bare(t.name)} row has its parent's ${t.keyColumn}`, sql: verify }],
    },
    {
      about: [
        `Clears ${t.name}.${t.keyColumn} in batches (the trigger still fills it for new rows until its own rollback; the app's triggers do not fire).`,
        '',
        ...clearInBatchesWhy,
      ],
      directives: [noSnapshot, triggersOff, ...batch],
      body: [`UPDATE ${table} AS t\n   SET ${key} = NULL\n WHERE ${range}t.${key} IS NOT NULL`],
    },
  ];
}

/**
 * Rows the backfill left without a key although a path leads them to an owner row: found
 * along the paths to the owner itself, not through the parents' keys, so rows skipped
 * because a parent was not filled yet fail the verify instead of matching its NULL.
 */
function skipped(m: ScaffoldModel, t: KeyedTable, names: Aliases): string {
  return `(t.${q(t.keyColumn)} IS NULL AND ${ownerOf(m, t, 't', names)} IS NOT NULL)`;
}

const clearInBatchesWhy = wrap(
  'Safe on a live database: batches over the same key as the backfill, each its own short transaction, throttled as the backfill is (the probe, lock waits, replica lag), so no row stays locked for long. Run again after a kill, it walks from the first key and clears what is left.',
);

// ---------------------------------------------------------------------------------------
// Step 5: validate, NOT NULL
// ---------------------------------------------------------------------------------------

function notNullCheck(t: KeyedTable): [UnitText, UnitText] {
  const n = keyNames(t);
  const table = qt(t.name);
  return [
    {
      about: [
        `Adds CHECK (${t.keyColumn} IS NOT NULL) NOT VALID to ${t.name}: from now on every written row needs its key.`,
        '',
        ...wrap(
          `Safe on a live database: NOT VALID skips the scan of existing rows, so the brief lock (${briefLock}) is all it costs. The next unit validates it without blocking writes.`,
        ),
      ],
      directives: [noSnapshot, ...lockSafe],
      body: [`ALTER TABLE ${table} ADD CONSTRAINT ${q(n.check)} CHECK (${q(t.keyColumn)} IS NOT NULL) NOT VALID`],
    },
    {
      about: [`Drops the check ${n.check}.`],
      directives: [noSnapshot, ...lockSafe],
      body: [`ALTER TABLE ${table} DROP CONSTRAINT IF EXISTS ${q(n.check)}`],
    },
  ];
}

function validate(m: ScaffoldModel, t: KeyedTable, keep: boolean): [UnitText, UnitText] {
  const n = keyNames(t);
  const table = qt(t.name);
  const constraints = keep ? [n.fk] : [n.fk, n.check];
  return [
    {
      about: [
        `Validates ${constraints.join(' and ')} on ${t.name}.`,
        '',
        ...wrap(
          'Safe on a live database: VALIDATE CONSTRAINT scans under SHARE UPDATE EXCLUSIVE, which lets the app read and write throughout (the foreign key takes ROW SHARE on the tenants table).',
        ),
      ],
      directives: [noSnapshot, ...lockSafe],
      body: constraints.map((c) => `ALTER TABLE ${table} VALIDATE CONSTRAINT ${q(c)}`),
      verifies: [
        {
          name: `${constraints.join(' and ')} validated`,
          sql: `SELECT conname FROM pg_constraint\n WHERE conrelid = ${quoteLiteral(table)}::regclass AND conname IN (${constraints.map(quoteLiteral).join(', ')}) AND NOT convalidated`,
        },
      ],
    },
    {
      about: [
        `Makes ${constraints.join(' and ')} NOT VALID again, as before the unit (PostgreSQL cannot un-validate: each is dropped and added back NOT VALID, no scan).`,
      ],
      directives: [noSnapshot, ...lockSafe],
      body: [
        `ALTER TABLE ${table} DROP CONSTRAINT ${q(n.fk)}`,
        `ALTER TABLE ${table} ADD CONSTRAINT ${q(n.fk)} FOREIGN KEY (${q(t.keyColumn)}) REFERENCES ${m.tenantsTarget} NOT VALID`,
        ...(keep
          ? []
          : [
              `ALTER TABLE ${table} DROP CONSTRAINT ${q(n.check)}`,
              `ALTER TABLE ${table} ADD CONSTRAINT ${q(n.check)} CHECK (${q(t.keyColumn)} IS NOT NULL) NOT VALID`,
            ]),
      ],
    },
  ];
}

function setNotNull(t: KeyedTable): [UnitText, UnitText] {
  const n = keyNames(t);
  const table = qt(t.name);
  const key = q(t.keyColumn);
  return [
    {
      about: [
        `Makes ${t.name}.${t.keyColumn} NOT NULL and drops the check that proved it.`,
        '',
        ...wrap(
          `Safe on a live database: with the validated CHECK (${t.keyColumn} IS NOT NULL) in place, PostgreSQL (12+) sets NOT NULL without scanning the table, so the ACCESS EXCLUSIVE lock lasts an instant (${briefLock}).`,
        ),
      ],
      directives: [noSnapshot, ...lockSafe],
      body: [`ALTER TABLE ${table} ALTER COLUMN ${key} SET NOT NULL`, `ALTER TABLE ${table} DROP CONSTRAINT ${q(n.check)}`],
      verifies: [
        {
          name: `${t.name}.${t.keyColumn} is NOT NULL`,
          sql: `SELECT attname FROM pg_attribute\n WHERE attrelid = ${quoteLiteral(table)}::regclass AND attname = ${quoteLiteral(t.keyColumn)} AND NOT attnotnull`,
        },
      ],
    },
    {
      about: [
        `Makes ${t.name}.${t.keyColumn} nullable again, with its validated check back, as before the unit.`,
        '',
        ...wrap(
          `As in the units: the check is added NOT VALID (a brief lock, ${briefLock}), then validated under SHARE UPDATE EXCLUSIVE (the app reads and writes throughout), each statement committed on its own (hence no transaction), so no scan runs under a lock that blocks the app. Run again after a kill, it resumes after the statements done.`,
        ),
      ],
      directives: [
        'transaction off',
        noSnapshot,
        ...lockSafe,
        'allow ban-drop-not-null the rollback gives the column back as it was before the unit: nullable, the validated check in place',
      ],
      body: [
        `ALTER TABLE ${table} ADD CONSTRAINT ${q(n.check)} CHECK (${key} IS NOT NULL) NOT VALID`,
        `ALTER TABLE ${table} VALIDATE CONSTRAINT ${q(n.check)}`,
        `ALTER TABLE ${table} ALTER COLUMN ${key} DROP NOT NULL`,
      ],
    },
  ];
}

// ---------------------------------------------------------------------------------------
// Step 6: composite keys
// ---------------------------------------------------------------------------------------

export interface CompositeEdge {
  from: KeyedTable;
  to: KeyedTable;
  columns: string[];
  referencedColumns: string[];
  /** Derivation hops cascade the key down when a parent is re-parented; consistency edges refuse. */
  derivation: boolean;
  name: string;
  /**
   * Where the constraint goes: the table, or (PostgreSQL refuses a foreign key NOT VALID on a
   * partitioned table) each partition that holds the legacy foreign key, under its own name.
   */
  places: { table: string; name: string }[];
}

export function compositeEdges(m: ScaffoldModel): CompositeEdge[] {
  const edges: CompositeEdge[] = [];
  for (const t of m.keyed) {
    const candidates: { columns: string[]; references: string; referencedColumns: string[]; derivation: boolean; constraint: string }[] = [
      ...m.firstHops(t).map((h) => ({ ...h, derivation: true })),
      ...t.analysis.consistency.filter((e) => e.policy !== 'keep').map((e) => ({ ...e, derivation: false })),
    ];
    for (const c of candidates) {
      const to = m.keyedTable(c.references);
      // A unique (key, id) on a partitioned table would have to include its partition key: no composite target.
      if (!to || to.partitions.length > 0) continue;
      if (to.isOwner && m.analysis.ownerIsTenants) continue; // the key's own foreign key is this edge
      if (c.columns.includes(t.keyColumn) || c.referencedColumns.includes(to.keyColumn)) continue;
      if (edges.some((e) => e.from === t && e.columns.join() === c.columns.join())) continue;
      const name = pgName(bare(t.name), t.keyColumn, ...c.columns, 'fkey');
      const onPartitions = t.catalog.foreignKeys.find((fk) => fk.name === c.constraint)?.partitions?.map((p) => p.table) ?? t.partitions;
      const places =
        t.partitions.length === 0
          ? [{ table: t.name, name }]
          : onPartitions.map((p) => ({ table: p, name: pgName(bare(p), t.keyColumn, ...c.columns, 'fkey') }));
      edges.push({ from: t, to, columns: c.columns, referencedColumns: c.referencedColumns, derivation: c.derivation, name, places });
    }
  }
  return edges;
}

export function uniqueName(t: KeyedTable, columns: string[]): string {
  return pgName(bare(t.name), t.keyColumn, ...columns, 'key');
}

function compositeUnique(t: KeyedTable, columns: string[]): [UnitText, UnitText] {
  const name = uniqueName(t, columns);
  const table = qt(t.name);
  const cols = [t.keyColumn, ...columns].map(q).join(', ');
  return [
    {
      about: [
        `Adds UNIQUE (${[t.keyColumn, ...columns].join(', ')}) to ${t.name}, the target of foreign keys that include the key.`,
        '',
        ...wrap(
          `Safe on a live database: the unique index is built CONCURRENTLY (reads and writes go on; hence no transaction), then attached as a constraint, which only takes a brief lock (${briefLock}).`,
        ),
      ],
      directives: ['transaction off', noSnapshot, ...lockSafe],
      body: [
        `CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ${q(name)} ON ${table} (${cols})`,
        `ALTER TABLE ${table} ADD CONSTRAINT ${q(name)} UNIQUE USING INDEX ${q(name)}`,
      ],
      verifies: [
        {
          name: `${name} is a constraint`,
          sql: `SELECT ${quoteLiteral(name)} AS missing\n WHERE NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = ${quoteLiteral(table)}::regclass AND conname = ${quoteLiteral(name)})`,
        },
      ],
    },
    {
      about: [
        `Drops the constraint ${name} (and its index), then, CONCURRENTLY, the index if it was built but never attached (a unit killed in between).`,
        '',
        ...wrap(
          `Each statement commits on its own (hence no transaction): the constraint's drop takes a brief lock (${briefLock}); the index alone is dropped without blocking the app.`,
        ),
      ],
      directives: ['transaction off', noSnapshot, ...lockSafe],
      body: [`ALTER TABLE ${table} DROP CONSTRAINT IF EXISTS ${q(name)}`, `DROP INDEX CONCURRENTLY IF EXISTS ${qualifiedIn(t.name, name)}`],
    },
  ];
}

function compositeForeignKeys(t: KeyedTable, edges: CompositeEdge[]): [UnitText, UnitText] {
  return [
    {
      about: [
        `Adds foreign keys from ${t.name} that include ${t.keyColumn}, NOT VALID: the database itself refuses a reference into another tenant.`,
        '',
        ...wrap(
          `The legacy foreign keys stay (their ON DELETE actions are what the app relies on); the new ones add the tenant. Along the derivation they cascade ON UPDATE, so a re-parented row carries its children's key with it; a consistency edge refuses instead. Safe on a live database: NOT VALID skips the scan, the brief lock is waited for at most ${lockTimeoutMs} ms (then retried); the next unit validates without blocking writes.`,
        ),
      ],
      directives: [noSnapshot, ...lockSafe],
      body: edges.flatMap((e) => e.places.map((p) => compositeForeignKey(t, e, p))),
    },
    {
      about: [`Drops the foreign keys of ${t.name} that include ${t.keyColumn}.`],
      directives: [noSnapshot, ...lockSafe],
      body: edges.flatMap((e) => e.places.map((p) => `ALTER TABLE ${qt(p.table)} DROP CONSTRAINT IF EXISTS ${q(p.name)}`)),
    },
  ];
}

/** ALTER TABLE ... ADD CONSTRAINT of a foreign key that includes the key, NOT VALID, at one of its places. */
function compositeForeignKey(t: KeyedTable, e: CompositeEdge, place: { table: string; name: string }): string {
  return `ALTER TABLE ${qt(place.table)} ADD CONSTRAINT ${q(place.name)}\n  FOREIGN KEY (${[t.keyColumn, ...e.columns].map(q).join(', ')})\n  REFERENCES ${qt(e.to.name)} (${[e.to.keyColumn, ...e.referencedColumns].map(q).join(', ')})${e.derivation ? ' ON UPDATE CASCADE' : ''}\n  NOT VALID`;
}

function compositeValidate(t: KeyedTable, edges: CompositeEdge[]): [UnitText, UnitText] {
  const places = edges.flatMap((e) => e.places.map((p) => ({ edge: e, ...p })));
  const tables = [...new Set(places.map((p) => p.table))];
  return [
    {
      about: [
        `Validates the foreign keys of ${t.name} that include ${t.keyColumn}.`,
        '',
        ...wrap(
          'Safe on a live database: VALIDATE CONSTRAINT scans under SHARE UPDATE EXCLUSIVE, which lets the app read and write throughout.',
        ),
      ],
      directives: [noSnapshot, ...lockSafe],
      body: places.map((p) => `ALTER TABLE ${qt(p.table)} VALIDATE CONSTRAINT ${q(p.name)}`),
      verifies: [
        {
          name: `${t.name}'s tenant foreign keys validated`,
          sql: `SELECT conname FROM pg_constraint\n WHERE conrelid IN (${tables.map((x) => `${quoteLiteral(qt(x))}::regclass`).join(', ')}) AND conname IN (${places.map((p) => quoteLiteral(p.name)).join(', ')}) AND NOT convalidated`,
        },
      ],
    },
    {
      about: [
        `Makes the foreign keys of ${t.name} that include ${t.keyColumn} NOT VALID again (dropped and added back NOT VALID, no scan).`,
      ],
      directives: [noSnapshot, ...lockSafe],
      body: places.flatMap((p) => [`ALTER TABLE ${qt(p.table)} DROP CONSTRAINT ${q(p.name)}`, compositeForeignKey(t, p.edge, p)]),
    },
  ];
}

// ---------------------------------------------------------------------------------------
// Step 7: row level security
// ---------------------------------------------------------------------------------------

export function tenantMatch(m: ScaffoldModel, t: KeyedTable): string {
  // missing_ok and NULLIF: a session that never set the setting reads NULL, and one that set
  // it with SET LOCAL and ended that transaction reads '' (NULL here): either sees no row.
  return `${q(t.keyColumn)} = NULLIF(current_setting(${quoteLiteral(m.analysis.setting)}, true), '')::${m.keyType}`;
}

function rowLevelSecurity(m: ScaffoldModel, t: KeyedTable): [UnitText, UnitText] {
  const n = keyNames(t);
  const table = qt(t.name);
  const match = tenantMatch(m, t);
  return [
    {
      about: [
        `Row level security on ${t.name}: a session sees and writes only the rows of the tenant in ${m.analysis.setting}.`,
        '',
        ...wrap(
          `Switch it on once the app sets ${m.analysis.setting} in every transaction (SET LOCAL, or set_config(..., true)): never set, or reset to '' when a SET LOCAL ended, it matches no row. FORCE applies it to the table's owner too; the role that runs migrations needs BYPASSRLS (or to be a superuser) to keep seeing every row. Safe on a live database: catalog changes under a brief lock (${briefLock}).`,
        ),
      ],
      directives: [noSnapshot, ...lockSafe],
      body: [
        `ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`,
        `ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`,
        `CREATE POLICY ${q(n.policy)} ON ${table}\n  USING (${match})\n  WITH CHECK (${match})`,
      ],
      verifies: [
        {
          name: `${t.name} has row level security, forced`,
          sql: `SELECT relname FROM pg_class WHERE oid = ${quoteLiteral(table)}::regclass AND NOT (relrowsecurity AND relforcerowsecurity)`,
        },
      ],
    },
    {
      about: [`Removes row level security from ${t.name}.`],
      directives: [noSnapshot, ...lockSafe],
      body: [
        `DROP POLICY IF EXISTS ${q(n.policy)} ON ${table}`,
        `ALTER TABLE ${table} NO FORCE ROW LEVEL SECURITY`,
        `ALTER TABLE ${table} DISABLE ROW LEVEL SECURITY`,
      ],
    },
  ];
}
