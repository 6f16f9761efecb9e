/**
 * `tenancy scaffold --citus`: the units that place the upgraded tenancy on a Citus cluster,
 * after the plan's other steps. Pure text generation, like the rest of the scaffold.
 *
 * Citus keeps a tenant's rows on one node when every tenant table is distributed by the key
 * and colocated with the tenants table; it then asks three things of the schema:
 *
 *   - every primary key and unique constraint of a distributed table includes the
 *     distribution column: the primary keys become (key, id);
 *   - a foreign key between distributed tables includes it on both sides (so the reference
 *     is checked on one shard); one key type everywhere, or the tables cannot be colocated;
 *   - what a distributed table references is distributed with it or a reference table (a
 *     copy on every node): the global tables the tenancy references become reference tables.
 *
 * Citus distributes no table that a plain table references, nor one that references a plain
 * table, so the foreign keys come apart first and come back once every table is placed:
 *
 *   1. the foreign keys between the tables placed, and the triggers that fill the key, dropped;
 *   2. per distributed table, its primary key and unique keys with the key first;
 *   3. the reference tables, then the tenants table (by its primary key), then every tenant
 *      table colocated with it, parents first;
 *   4. the foreign keys back, those between tenant tables with the key.
 *
 * Each unit's rollback undoes exactly that (undistribute_table, the old keys and foreign
 * keys by their names and definitions), so a full rollback returns the legacy schema.
 */
import { UsageError } from '../../errors.js';
import { quoteLiteral } from '../sql-text.js';
import type { CatalogColumn, CatalogForeignKey, CatalogTable, TableName } from '../types.js';
import { bare, pgName, q, qt, type KeyedTable, type ScaffoldModel } from './model.js';
import { wrap, type UnitText } from './render.js';

/** What the plan's earlier steps add to a table and the Citus units must know of. */
export interface ScaffoldedKey {
  table: TableName;
  /** The key's foreign key to the tenants table (step 2). */
  foreignKey: { name: string; definition: string };
  /** The trigger that fills the key (step 2). */
  trigger: { name: string; create: string };
}

export interface CitusUnit {
  name: string;
  up: UnitText;
  down: UnitText;
}

/** A table Citus distributes by `column`: the tenants table, the owner, every tenant table. */
interface Placed {
  name: TableName;
  column: string;
  /** The legacy catalog's table; undefined for a tenants table the plan creates. */
  catalog: CatalogTable | undefined;
  keyed: KeyedTable | undefined;
}

/** A foreign key as it stands when the Citus units run, and as they put it back. */
interface ForeignKeyText {
  table: TableName;
  name: string;
  /** What the rollback adds back (the definition as it was). */
  before: string;
  /** What the last unit adds once every table is placed. */
  after: string;
  /** Why `after` differs from `before`, for the header. */
  changed?: string;
}

/** Opens the foreign-key units: one connection per node, so that a foreign key to a reference table may follow a change to a distributed table (addForeignKeys). */
const sequential = "SET LOCAL citus.multi_shard_modify_mode TO 'sequential'";
const noSnapshot = 'snapshot none';
const maintenance = wrap(
  'Not for a live database: Citus copies each table into its shards and blocks writes to it meanwhile, and the tenancy has no foreign keys between the first and the last of these units. Run them in a maintenance window, with the app stopped or read-only.',
);

export function citusUnits(m: ScaffoldModel, scaffolded: ScaffoldedKey[]): CitusUnit[] {
  refuseWhatCitusCannotHold(m);
  const placed = placedTables(m);
  const references = referenceTables(m, placed);
  refuseOutsideReferences(m, placed, references);
  const foreignKeys = foreignKeyTexts(m, placed, references, scaffolded);

  const units: CitusUnit[] = [];
  if (foreignKeys.length + scaffolded.length > 0) {
    units.push({
      name: 'citus_drop_foreign_keys',
      ...dropForeignKeys(m, foreignKeys, scaffolded, [...placed.map((p) => p.name), ...references]),
    });
  }
  for (const p of placed) {
    const keys = distributionKeys(m, p);
    if (keys) units.push({ name: `citus_${m.slug(p.name)}_keys`, ...keys });
  }
  for (const r of references) units.push({ name: `citus_reference_${m.slug(r)}`, ...referenceTable(m, r) });
  for (const p of placed) units.push({ name: `citus_distribute_${m.slug(p.name)}`, ...distribute(m, p) });
  if (foreignKeys.length > 0) units.push({ name: 'citus_foreign_keys', ...addForeignKeys(foreignKeys) });
  return units;
}

// ---------------------------------------------------------------------------------------
// What Citus cannot hold, refused before any file is written
// ---------------------------------------------------------------------------------------

function refuseWhatCitusCannotHold(m: ScaffoldModel): void {
  const problems: string[] = [];
  for (const t of m.keyed) {
    if (!t.isOwner && t.analysis.unresolvedPolicy === 'keep') {
      problems.push(`${t.name}: unresolved: keep leaves rows without a key, and Citus places no row whose distribution column is NULL`);
    }
    for (const edge of t.analysis.consistency) {
      if (edge.policy === 'keep') {
        problems.push(
          `${t.name}.${edge.columns.join(', ')}: conflicts: keep allows a reference into another tenant, and a foreign key between distributed tables must include the key`,
        );
      }
    }
    const type = t.catalog.columns.find((c) => c.name === t.keyColumn)?.type;
    if (!t.addsKey && type !== undefined && type !== m.keyType) {
      problems.push(`${t.name}.${t.keyColumn} is ${type}, the tenants table's key ${m.keyType}: colocated tables need one key type`);
    }
  }
  if (problems.length > 0) {
    throw new UsageError(`--citus cannot place this tenancy: ${problems[0]}`, {
      code: 'citus-refused',
      hint: 'choose another policy in the model (tenantify.config.json: unresolved delete; conflicts detach or delete), or give the key one type; nothing was written',
      details: problems.slice(1),
    });
  }
}

// ---------------------------------------------------------------------------------------
// Which tables go where
// ---------------------------------------------------------------------------------------

/** The tenants table first, then the owner and every tenant table, parents first (the analysis's order). */
function placedTables(m: ScaffoldModel): Placed[] {
  const tenants = m.analysis.tenants;
  const tenantsKeyed = m.keyedTable(tenants);
  const placed: Placed[] = [
    { name: tenants, column: m.tenantsPk, catalog: m.createsTenants ? undefined : m.table(tenants), keyed: tenantsKeyed },
  ];
  for (const t of m.keyed) if (t.name !== tenants) placed.push({ name: t.name, column: t.keyColumn, catalog: t.catalog, keyed: t });
  return placed;
}

/**
 * Every table the placed tables reference, directly or through another reference table, and
 * the global tables that reference those (a plain table may reference no Citus table).
 */
function referenceTables(m: ScaffoldModel, placed: Placed[]): TableName[] {
  const inside = new Set(placed.map((p) => p.name));
  const found: TableName[] = [];
  const queue = placed.flatMap((p) => p.catalog?.foreignKeys ?? []);
  // A global table that references `name`, walked like a reference from `name` to it.
  const referencing = (name: TableName): CatalogForeignKey[] =>
    [...m.tables.values()].flatMap((t) =>
      m.analyses.get(t.name)?.role === 'global' && !found.includes(t.name)
        ? t.foreignKeys.filter((f) => f.references === name).map((f) => ({ ...f, table: f.references, references: f.table }))
        : [],
    );
  while (queue.length > 0) {
    const fk = queue.shift() as CatalogForeignKey;
    if (inside.has(fk.references) || found.includes(fk.references)) continue;
    const role = m.analyses.get(fk.references)?.role;
    if (role !== 'global') {
      throw new UsageError(
        `--citus: ${fk.table} references ${fk.references} (${fk.name}), which the model ${role === 'ignore' ? 'ignores' : 'does not read'}: Citus needs it distributed with the tenancy or a reference table`,
        {
          code: 'citus-refused',
          hint: `mark ${bare(fk.references)} "global" in the model (tenantify.config.json) to make it a reference table, or drop that foreign key first; nothing was written`,
        },
      );
    }
    found.push(fk.references);
    queue.push(...m.table(fk.references).foreignKeys, ...referencing(fk.references));
  }
  return found;
}

/** A table left plain that references a placed one: Citus would refuse to distribute it. */
function refuseOutsideReferences(m: ScaffoldModel, placed: Placed[], references: TableName[]): void {
  const inside = new Set([...placed.map((p) => p.name), ...references]);
  for (const table of m.tables.values()) {
    if (inside.has(table.name)) continue;
    const fk = table.foreignKeys.find((f) => inside.has(f.references));
    if (fk) {
      throw new UsageError(
        `--citus: ${table.name} references ${fk.references} (${fk.name}) and stays a plain table: Citus distributes no table a plain table references`,
        {
          code: 'citus-refused',
          hint: `give ${bare(table.name)} a role in the model (tenant or global), or drop that foreign key first; nothing was written`,
        },
      );
    }
  }
}

function placedOf(placed: Placed[], name: TableName): Placed | undefined {
  return placed.find((p) => p.name === name);
}

// ---------------------------------------------------------------------------------------
// Foreign keys: as they are before the Citus units, and as the last one adds them back
// ---------------------------------------------------------------------------------------

const deleteActions: Record<string, string> = { cascade: ' ON DELETE CASCADE', restrict: ' ON DELETE RESTRICT', 'no action': '' };

function foreignKeyTexts(m: ScaffoldModel, placed: Placed[], references: TableName[], scaffolded: ScaffoldedKey[]): ForeignKeyText[] {
  const texts: ForeignKeyText[] = [];
  for (const s of scaffolded)
    texts.push({ table: s.table, name: s.foreignKey.name, before: s.foreignKey.definition, after: s.foreignKey.definition });
  const holders = [...placed.flatMap((p) => (p.catalog ? [p.catalog] : [])), ...references.map((r) => m.table(r))];
  for (const table of holders) {
    for (const fk of table.foreignKeys) {
      const before = fk.definition ?? legacyDefinition(fk);
      const from = placedOf(placed, fk.table);
      const to = placedOf(placed, fk.references);
      if (!from || !to) {
        texts.push({ table: fk.table, name: fk.name, before, after: before });
        continue;
      }
      const keyed = includesKey(fk, from.column, to.column);
      const notes: string[] = keyed ? [] : [`with ${from.column}`];
      let onDelete = deleteActions[fk.onDelete];
      if (onDelete === undefined) {
        onDelete = '';
        notes.push(
          `ON DELETE ${fk.onDelete.toUpperCase()} becomes NO ACTION (Citus refuses it on a foreign key that includes the distribution column: the app clears the reference before deleting the row)`,
        );
      }
      const onUpdate = /ON UPDATE (CASCADE|SET NULL|SET DEFAULT)/.exec(before);
      if (onUpdate) notes.push(`ON UPDATE ${onUpdate[1]} is left out (Citus refuses it there; ids do not change under a distributed row)`);
      if (notes.length === 0) {
        texts.push({ table: fk.table, name: fk.name, before, after: before });
        continue;
      }
      const match = /\bMATCH FULL\b/.test(before) ? ' MATCH FULL' : '';
      const restrictUpdate = /ON UPDATE RESTRICT/.test(before) ? ' ON UPDATE RESTRICT' : '';
      const deferrable = /(DEFERRABLE( INITIALLY (DEFERRED|IMMEDIATE))?)$/.exec(before.replace(/ NOT VALID$/, ''))?.[1];
      const columns = keyed ? fk.columns : [from.column, ...fk.columns];
      const referenced = keyed ? fk.referencedColumns : [to.column, ...fk.referencedColumns];
      const after = `FOREIGN KEY (${columns.map(q).join(', ')}) REFERENCES ${qt(fk.references)} (${referenced.map(q).join(', ')})${match}${onDelete}${restrictUpdate}${deferrable ? ` ${deferrable}` : ''}${fk.validated ? '' : ' NOT VALID'}`;
      texts.push({ table: fk.table, name: fk.name, before, after, changed: notes.join('; ') });
    }
  }
  return texts;
}

/** The foreign key already pairs the child's distribution column with the parent's. */
function includesKey(fk: CatalogForeignKey, childColumn: string, parentColumn: string): boolean {
  return fk.columns.some((c, i) => c === childColumn && fk.referencedColumns[i] === parentColumn);
}

/** A definition from the catalog's fields, for a catalog read without definitions. */
function legacyDefinition(fk: CatalogForeignKey): string {
  const onDelete = fk.onDelete === 'no action' ? '' : ` ON DELETE ${fk.onDelete.toUpperCase()}`;
  return `FOREIGN KEY (${fk.columns.map(q).join(', ')}) REFERENCES ${qt(fk.references)}(${fk.referencedColumns.map(q).join(', ')})${onDelete}${fk.validated ? '' : ' NOT VALID'}`;
}

const addConstraint = (f: { table: TableName; name: string }, definition: string): string =>
  `ALTER TABLE ${qt(f.table)} ADD CONSTRAINT ${q(f.name)} ${definition}`;
const dropConstraint = (f: { table: TableName; name: string }): string => `ALTER TABLE ${qt(f.table)} DROP CONSTRAINT ${q(f.name)}`;
const regclass = (table: TableName): string => `${quoteLiteral(qt(table))}::regclass`;

// ---------------------------------------------------------------------------------------
// 1. Foreign keys and triggers dropped
// ---------------------------------------------------------------------------------------

function dropForeignKeys(
  m: ScaffoldModel,
  foreignKeys: ForeignKeyText[],
  scaffolded: ScaffoldedKey[],
  tables: TableName[],
): { up: UnitText; down: UnitText } {
  const triggers = scaffolded.map((s) => ({ table: s.table, ...s.trigger }));
  return {
    up: {
      about: [
        `Drops the foreign keys between the tables Citus places (${foreignKeys.length}) and the triggers that fill ${m.analysis.key} (${triggers.length}): the first step toward Citus.`,
        '',
        ...wrap(
          `Citus distributes no table that a plain table references, nor one that references a plain table, so the foreign keys come apart here and come back in the last Citus unit, once every table is placed. The triggers go for good: on a distributed table a row is routed by its ${m.analysis.key} before any trigger runs, so from here on the app writes ${m.analysis.key} itself.`,
        ),
        '',
        ...maintenance,
      ],
      directives: [noSnapshot],
      body: [...triggers.map((t) => `DROP TRIGGER ${q(t.name)} ON ${qt(t.table)}`), ...foreignKeys.map(dropConstraint)],
      verifies: [
        {
          // Read again later (tenantify verify), the foreign keys are back on distributed tables: those pass.
          name: 'no foreign key left between the tables Citus places, until they are placed',
          sql: `SELECT conrelid::regclass::text AS "table", conname FROM pg_constraint\n WHERE contype = 'f' AND conrelid IN (${tables.map(regclass).join(', ')})\n   AND NOT EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = conrelid)`,
        },
      ],
    },
    down: {
      about: [
        "Adds back the foreign keys between the tenancy's tables exactly as they were (names and definitions), and the triggers that fill the key.",
        '',
        ...wrap(
          'The units after this one, rolled back first, made every table a plain table again and gave back the old primary and unique keys these foreign keys point at. Each is validated as it is added (it was valid before), under the lock that takes.',
        ),
      ],
      directives: [noSnapshot],
      body: [...foreignKeys.map((f) => addConstraint(f, f.before)), ...triggers.map((t) => t.create)],
    },
  };
}

// ---------------------------------------------------------------------------------------
// 2. Primary and unique keys with the distribution column
// ---------------------------------------------------------------------------------------

interface KeyChange {
  up: string[];
  down: string[];
  what: string;
}

function distributionKeys(m: ScaffoldModel, p: Placed): { up: UnitText; down: UnitText } | undefined {
  const changes: KeyChange[] = [];
  const table = qt(p.name);
  const column = q(p.column);
  if (p.catalog) {
    for (const key of p.catalog.uniques) {
      if (key.columns.includes(p.column)) continue;
      const kind = key.kind === 'primary' ? 'PRIMARY KEY' : 'UNIQUE';
      const before = key.definition ?? `${kind} (${key.columns.map(q).join(', ')})`;
      const after =
        before.startsWith(kind) && before.includes('(')
          ? `${before.slice(0, before.indexOf('(') + 1)}${column}, ${before.slice(before.indexOf('(') + 1)}`
          : `${kind} (${[p.column, ...key.columns].map(q).join(', ')})`;
      changes.push({
        what: `${key.kind === 'primary' ? 'primary key' : 'unique'} ${key.name} (${key.columns.join(', ')}) → (${[p.column, ...key.columns].join(', ')})`,
        up: [`ALTER TABLE ${table} DROP CONSTRAINT ${q(key.name)}`, `ALTER TABLE ${table} ADD CONSTRAINT ${q(key.name)} ${after}`],
        down: [`ALTER TABLE ${table} DROP CONSTRAINT ${q(key.name)}`, `ALTER TABLE ${table} ADD CONSTRAINT ${q(key.name)} ${before}`],
      });
    }
    for (const index of p.catalog.indexes) {
      if (!index.unique || index.constraint !== false || !index.definition || index.columns.includes(p.column)) continue;
      const open = index.definition.indexOf('(', index.definition.indexOf(' USING '));
      const after = `${index.definition.slice(0, open + 1)}${column}, ${index.definition.slice(open + 1)}`;
      const qualified = `${q(p.catalog.schema)}.${q(index.name)}`;
      changes.push({
        what: `unique index ${index.name} (${index.columns.map((c) => c ?? 'expression').join(', ')}) → with ${p.column} first`,
        up: [`DROP INDEX ${qualified}`, after],
        down: [`DROP INDEX ${qualified}`, index.definition],
      });
    }
  } else if (m.createsTenants) {
    // The tenants table the plan created: its legacy id column is unique on its own.
    const name = pgName(bare(p.name), m.legacyColumn, 'key');
    changes.push({
      what: `unique ${name} (${m.legacyColumn}) → (${p.column}, ${m.legacyColumn})`,
      up: [
        `ALTER TABLE ${table} DROP CONSTRAINT ${q(name)}`,
        `ALTER TABLE ${table} ADD CONSTRAINT ${q(name)} UNIQUE (${column}, ${q(m.legacyColumn)})`,
      ],
      down: [
        `ALTER TABLE ${table} DROP CONSTRAINT ${q(name)}`,
        `ALTER TABLE ${table} ADD CONSTRAINT ${q(name)} UNIQUE (${q(m.legacyColumn)})`,
      ],
    });
  }
  const identities = p.catalog
    ? p.catalog.columns.flatMap((c) => (c.identity ? [{ column: c.name, kind: c.identity }] : []))
    : m.createsTenants
      ? [{ column: m.tenantsPk, kind: 'by default' as const }]
      : [];
  for (const { column: c, kind } of identities) {
    changes.push({
      what: `identity column ${c} → a sequence of its own (Citus cannot make a table with an identity column plain again)`,
      up: [identityToSequence(p.name, c)],
      down: [sequenceToIdentity(p.name, c, kind)],
    });
  }
  if (changes.length === 0) return undefined;
  return {
    up: {
      about: [
        `Puts ${p.column} first in ${p.name}'s primary and unique keys, which Citus requires of a table distributed by it:`,
        ...changes.map((c) => `  ${c.what}`),
        '',
        ...wrap(
          `Each keeps its name. A unique key with ${p.column} in front is unique per tenant, no longer across tenants: where the app relies on a value unique across tenants (a login email, an API key), it needs a lookup of its own (a reference table, or a check in the app), since Citus cannot enforce that on a distributed table. The keys are rebuilt under an ACCESS EXCLUSIVE lock held while each index is built.`,
        ),
        '',
        ...maintenance,
      ],
      directives: [noSnapshot],
      body: changes.flatMap((c) => c.up),
      verifies: [
        {
          name: `every unique index of ${p.name} includes ${p.column}`,
          sql: `SELECT i.indexrelid::regclass::text AS index FROM pg_index i\n WHERE i.indrelid = ${regclass(p.name)} AND i.indisunique\n   AND NOT (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attname = ${quoteLiteral(p.column)}) = ANY (i.indkey::int2[])`,
        },
      ],
    },
    down: {
      about: [`Gives ${p.name} its primary and unique keys back as they were (names and definitions).`],
      directives: [noSnapshot],
      body: [...changes].reverse().flatMap((c) => c.down),
    },
  };
}

/**
 * An identity column made a plain column whose default is a sequence of the same name, at
 * the same value: undistribute_table refuses a table with an identity column, so the rollback
 * would be stuck. The values the column takes do not change.
 */
function identityToSequence(table: TableName, column: string): string {
  const t = quoteLiteral(qt(table));
  const c = quoteLiteral(column);
  return withSequencePosition(table, column, [
    `  ALTER TABLE ${qt(table)} ALTER COLUMN ${q(column)} DROP IDENTITY;`,
    `  EXECUTE format('CREATE SEQUENCE %s AS %s OWNED BY %s.%I', sequence_name, format_type((SELECT atttypid FROM pg_attribute WHERE attrelid = ${t}::regclass AND attname = ${c}), NULL), ${t}, ${c});`,
    '  PERFORM setval(sequence_name, at, called);',
    `  EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT nextval(%L::regclass)', ${t}, ${c}, sequence_name);`,
  ]);
}

/** The identity column back, at the value its sequence had reached. */
function sequenceToIdentity(table: TableName, column: string, kind: 'always' | 'by default'): string {
  const t = quoteLiteral(qt(table));
  const c = quoteLiteral(column);
  return withSequencePosition(table, column, [
    `  ALTER TABLE ${qt(table)} ALTER COLUMN ${q(column)} DROP DEFAULT;`,
    "  EXECUTE format('DROP SEQUENCE %s', sequence_name);",
    `  ALTER TABLE ${qt(table)} ALTER COLUMN ${q(column)} ADD GENERATED ${kind === 'always' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY;`,
    `  PERFORM setval(pg_get_serial_sequence(${t}, ${c}), at, called);`,
  ]);
}

/** A DO block that reads the column's sequence position (`sequence_name`, `at`, `called`) before `body` replaces the sequence. */
function withSequencePosition(table: TableName, column: string, body: string[]): string {
  return [
    'DO $$',
    'DECLARE',
    `  sequence_name text := pg_get_serial_sequence(${quoteLiteral(qt(table))}, ${quoteLiteral(column)});`,
    '  at bigint;',
    '  called boolean;',
    'BEGIN',
    "  EXECUTE format('SELECT last_value, is_called FROM %s', sequence_name) INTO at, called;",
    ...body,
    'END',
    '$$',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------
// 3. Reference tables, the tenants table, tenant tables
// ---------------------------------------------------------------------------------------

/** Undistributing a table makes it anew, and Citus does not carry its comments over. */
function commentsOf(m: ScaffoldModel, table: TableName): string[] {
  const t = m.tables.get(table);
  if (!t) {
    if (table === m.analysis.tenants && m.createsTenants)
      return [
        `COMMENT ON COLUMN ${qt(table)}.${q(m.legacyColumn)} IS ${quoteLiteral(`the ${m.analysis.owner} row this tenant was made from`)}`,
      ];
    return [];
  }
  return [
    ...(t.comment === undefined ? [] : [`COMMENT ON TABLE ${qt(table)} IS ${quoteLiteral(t.comment)}`]),
    ...t.columns.flatMap((c) =>
      c.comment === undefined ? [] : [`COMMENT ON COLUMN ${qt(table)}.${q(c.name)} IS ${quoteLiteral(c.comment)}`],
    ),
  ];
}

function identitiesOf(m: ScaffoldModel, table: TableName): CatalogColumn[] {
  return m.tables.get(table)?.columns.filter((c) => c.identity) ?? [];
}

function noTriggers(table: TableName): { name: string; sql: string } {
  return {
    name: `${table} has no trigger (Citus distributes no table with triggers)`,
    sql: `SELECT tgname AS "trigger" FROM pg_trigger WHERE tgrelid = ${regclass(table)} AND NOT tgisinternal`,
  };
}

function undistribute(m: ScaffoldModel, table: TableName, what: string): UnitText {
  const comments = commentsOf(m, table);
  return {
    about: [
      `Makes ${table} a plain table again: undistribute_table copies its rows back from the ${what} into a table made anew on the coordinator.`,
      ...(comments.length > 0 ? ['', 'Citus does not carry comments over to the new table: they are set again.'] : []),
    ],
    directives: [noSnapshot],
    body: [`SELECT undistribute_table(${quoteLiteral(qt(table))})`, ...comments],
  };
}

function referenceTable(m: ScaffoldModel, table: TableName): { up: UnitText; down: UnitText } {
  const users = m.analyses.get(table)?.referencedBy ?? [];
  return {
    up: {
      about: [
        `Makes ${table} a reference table: a copy on every node.`,
        '',
        ...wrap(
          `A global table${users.length > 0 ? ` (${users.map(bare).join(', ')} reference it)` : ''}: every shard's foreign keys and joins to it stay on the shard's node. Writes to it go to every node in one distributed transaction, which suits lookup data that rarely changes.`,
        ),
        '',
        ...maintenance,
      ],
      directives: [noSnapshot],
      body: [
        ...identitiesOf(m, table).map((c) => identityToSequence(table, c.name)),
        `SELECT create_reference_table(${quoteLiteral(qt(table))})`,
      ],
      prechecks: [noTriggers(table)],
      verifies: [
        {
          name: `${table} is a reference table`,
          sql: `SELECT ${quoteLiteral(table)} AS "table"\n WHERE NOT EXISTS (SELECT FROM citus_tables WHERE table_name = ${regclass(table)} AND citus_table_type = 'reference')\n    OR NOT EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = ${regclass(table)} AND partmethod = 'n')`,
        },
      ],
    },
    down: {
      ...undistribute(m, table, 'nodes'),
      body: [
        ...undistribute(m, table, 'nodes').body,
        ...identitiesOf(m, table).map((c) => sequenceToIdentity(table, c.name, c.identity ?? 'by default')),
      ],
    },
  };
}

function distribute(m: ScaffoldModel, p: Placed): { up: UnitText; down: UnitText } {
  const tenants = m.analysis.tenants;
  const anchor = p.name === tenants;
  const call = anchor
    ? `SELECT create_distributed_table(${quoteLiteral(qt(p.name))}, ${quoteLiteral(p.column)})`
    : `SELECT create_distributed_table(${quoteLiteral(qt(p.name))}, ${quoteLiteral(p.column)}, colocate_with => ${quoteLiteral(qt(tenants))})`;
  const why = anchor
    ? `The tenants table is distributed by its own ${p.column}, the value every tenant table's ${m.analysis.key} holds, so each tenant's rows everywhere share its shard. (A reference table here would silently make every table that references it a Citus local table, kept on the coordinator.)`
    : `Colocated with ${bare(tenants)}: a tenant's ${bare(p.name)} rows live on the node of its ${bare(tenants)} row, so a query with ${p.column} = X runs on one node, and joins and foreign keys on the key stay there. Tables it references were placed before it.`;
  return {
    up: {
      about: [`Distributes ${p.name} by ${p.column}${anchor ? '' : `, colocated with ${tenants}`}.`, '', ...wrap(why), '', ...maintenance],
      directives: [noSnapshot],
      body: [call],
      prechecks: [noTriggers(p.name)],
      verifies: [
        {
          name: `${p.name} is distributed by ${p.column}${anchor ? '' : ` and colocated with ${bare(tenants)}`}`,
          sql: [
            `SELECT ${quoteLiteral(p.name)} AS "table"`,
            ` WHERE NOT EXISTS (SELECT FROM citus_tables WHERE table_name = ${regclass(p.name)} AND citus_table_type = 'distributed' AND distribution_column = ${quoteLiteral(p.column)})`,
            `    OR NOT EXISTS (SELECT FROM pg_dist_partition p JOIN pg_dist_partition t ON t.logicalrelid = ${regclass(tenants)}`,
            `                    WHERE p.logicalrelid = ${regclass(p.name)} AND p.partmethod = 'h' AND p.colocationid = t.colocationid)`,
          ].join('\n'),
        },
      ],
    },
    down: undistribute(m, p.name, 'shards'),
  };
}

// ---------------------------------------------------------------------------------------
// 4. Foreign keys back
// ---------------------------------------------------------------------------------------

function addForeignKeys(foreignKeys: ForeignKeyText[]): { up: UnitText; down: UnitText } {
  const changed = foreignKeys.filter((f) => f.changed);
  return {
    up: {
      about: [
        `Adds the foreign keys back now that every table is placed (${foreignKeys.length}, each by its old name); ${changed.length} between tenant tables change as Citus needs:`,
        ...changed.map((f) => `  ${bare(f.table)}.${f.name}: ${f.changed}`),
        '',
        ...wrap(
          'With the key on both sides, Citus checks each reference on the shard that holds both rows, and the database itself refuses a reference into another tenant. One constraint per ALTER TABLE (Citus refuses more on a distributed table), in one transaction run over one connection per node (citus.multi_shard_modify_mode sequential): a foreign key to a reference table cannot follow a parallel change to a distributed table in a transaction. Each is validated as it is added.',
        ),
        '',
        ...maintenance,
      ],
      directives: [noSnapshot],
      body: [sequential, ...foreignKeys.map((f) => addConstraint(f, f.after))],
      verifies: [
        {
          name: 'every foreign key is back and valid',
          sql: `SELECT f.name FROM (VALUES ${foreignKeys.map((f) => `(${regclass(f.table)}, ${quoteLiteral(f.name)}, ${!/ NOT VALID$/.test(f.after)})`).join(',\n        ')}) AS f (rel, name, valid)\n WHERE NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = f.rel AND k.conname = f.name AND k.contype = 'f' AND (k.convalidated OR NOT f.valid))`,
        },
      ],
    },
    down: {
      about: [
        'Drops the foreign keys the unit added, over one connection per node (see the unit), so that the tables can be made plain again.',
      ],
      directives: [noSnapshot],
      body: [sequential, ...foreignKeys.map(dropConstraint)],
    },
  };
}
