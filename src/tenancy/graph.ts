/**
 * The foreign-key graph: from the catalog and the model to every table's role, its
 * derivation path to the owner, its fallbacks and its consistency edges (docs/tenancy.md).
 * Pure: no I/O, so every rule here is tested with small hand-made catalogs.
 *
 * A hop follows one foreign key from a table to the table it references. Paths never pass
 * through a table the model marks `global` or `ignore`, nor through the existing tenants
 * table (unless it is the owner), and they never follow a self-reference. They end at the
 * owner.
 */
import { UsageError } from '../errors.js';
import { compareNames } from './catalog.js';
import { parseQualifiedName, someNames, splitTableName, tableName, writtenName, type NamePart } from './sql-text.js';
import type {
  Catalog,
  CatalogForeignKey,
  CatalogTable,
  ConflictPolicy,
  ConsistencyEdge,
  Hint,
  Hop,
  TableAnalysis,
  TableConfig,
  TableName,
  TableRole,
  TenancyAnalysis,
  TenancyConfig,
  TenantTableConfig,
  ViewAnalysis,
} from './types.js';

/** Fallback paths kept per table (each a COALESCE branch in the SQL that follows it). */
const maxFallbacks = 4;
/** Fallbacks are looked for up to this many hops beyond the shortest path. */
const fallbackSlack = 3;
/** Nodes visited per table while enumerating paths: a bound for dense graphs. */
const searchBudget = 2_000;

export interface AnalyzeTenancyOptions {
  /**
   * Per table, the first hop's constraint to choose among paths as good as each other (what
   * analyze counted to have the fewest conflicting rows); otherwise the column names decide.
   */
  prefer?: Map<TableName, string>;
}

export function analyzeTenancy(catalog: Catalog, config: TenancyConfig, options: AnalyzeTenancyOptions = {}): TenancyAnalysis {
  const tables = new Map(catalog.tables.map((t) => [t.name, t]));
  const resolve = nameResolver(catalog);

  const owner = resolve(config.owner, 'tenancy.owner');
  if (!owner) throw unknownTable(config.owner, 'tenancy.owner', catalog);
  const ownerTable = tables.get(owner) as CatalogTable;

  const tenantsName = config.tenants ?? 'organizations';
  const tenantsFound = resolve(tenantsName, 'tenancy.tenants');
  const tenants = tenantsFound ?? newTableName(tenantsName, 'tenancy.tenants', ownerTable.schema);
  const tenantsExists = tenantsFound !== undefined;
  const ownerIsTenants = tenants === owner;
  const key = config.key ?? `${singular(tableOf(tenants))}_id`;

  const overrides = resolveOverrides(config.tables ?? {}, resolve, catalog);
  const ownerOverride = overrides.get(owner);
  if (typeof ownerOverride?.config === 'string') {
    throw new UsageError(`${ownerOverride.path}: the owner cannot be "${ownerOverride.config}"`, {
      code: 'model-invalid',
      hint: 'the owner is the table whose rows become tenants; remove this entry or choose another owner',
    });
  }
  if (typeof ownerOverride?.config === 'object' && (ownerOverride.config.via || ownerOverride.config.unresolved)) {
    const setting = ownerOverride.config.via ? 'via' : 'unresolved';
    throw new UsageError(`${ownerOverride.path}.${setting}: the owner takes no path (its rows are the tenants)`, {
      code: 'model-invalid',
      hint: `remove "${setting}" from this entry`,
    });
  }

  // The existing tenants table, when it is not the owner, is where the key points: it is
  // not a tenant table (it takes no key) and paths do not pass through it. Of the four
  // roles it is closest to `global` (no key, shared), so that is the role it gets.
  const blocked = (name: TableName): boolean => {
    if (name === owner) return false;
    if (tenantsExists && name === tenants) return true;
    const o = overrides.get(name)?.config;
    return o === 'global' || o === 'ignore';
  };

  const graph = buildGraph(catalog, owner, blocked);
  const derivations = new Map<TableName, Derived>();
  for (const table of catalog.tables) {
    if (table.name === owner || blocked(table.name) || overrides.get(table.name)?.via) continue;
    const derived = derive(graph, table.name, options.prefer?.get(table.name));
    if (derived) derivations.set(table.name, derived);
  }
  applyViaOverrides(overrides, tables, owner, blocked, derivations, key);

  const roles = new Map<TableName, TableRole>();
  for (const table of catalog.tables) {
    const o = overrides.get(table.name)?.config;
    roles.set(
      table.name,
      table.name === owner ? 'owner' : o === 'global' || o === 'ignore' ? o : derivations.has(table.name) ? 'tenant' : 'global',
    );
  }

  const referencedBy = new Map<TableName, Set<TableName>>();
  for (const table of catalog.tables) {
    for (const fk of table.foreignKeys) {
      if (fk.references === table.name) continue;
      let set = referencedBy.get(fk.references);
      if (!set) referencedBy.set(fk.references, (set = new Set()));
      set.add(table.name);
    }
  }

  const analyses: TableAnalysis[] = catalog.tables.map((table) => {
    const role = roles.get(table.name) as TableRole;
    const derived = derivations.get(table.name);
    const override = overrides.get(table.name);
    const tableConfig = typeof override?.config === 'object' ? override.config : undefined;
    const consistency =
      role === 'tenant' || role === 'owner'
        ? consistencyEdges(table, derived?.via[0]?.constraint, roles, tableConfig?.conflicts ?? {}, key)
        : [];
    if (tableConfig) validateTableConfig(table, role, tableConfig, consistency, override?.path as string, key);
    return {
      table: table.name,
      role,
      via: role === 'tenant' && derived ? derived.via : [],
      fallbacks: role === 'tenant' && derived ? derived.fallbacks : [],
      consistency,
      unresolvedPolicy: tableConfig?.unresolved ?? 'fail',
      referencedBy: [...(referencedBy.get(table.name) ?? [])].sort(compareNames),
      depth: role === 'owner' ? 0 : role === 'tenant' && derived ? derived.via.length : -1,
      estimatedRows: table.estimatedRows,
      ...(table.partitions ? { partitions: table.partitions.map((p) => p.name) } : {}),
      ...(role === 'tenant' && derived?.alternatives && derived.alternatives.length > 0
        ? {
            ambiguous: [derived.via, ...derived.alternatives].map((path, i) => ({
              columns: (path[0] as Hop).columns,
              references: (path[0] as Hop).references,
              constraint: (path[0] as Hop).constraint,
              chosen: i === 0,
            })),
          }
        : {}),
    };
  });

  const rank: Record<TableRole, number> = { owner: 0, tenant: 1, global: 2, ignore: 3 };
  analyses.sort((a, b) => rank[a.role] - rank[b.role] || (a.role === 'tenant' ? a.depth - b.depth : 0) || compareNames(a.table, b.table));

  return {
    owner,
    tenants,
    tenantsExists,
    ownerIsTenants,
    key,
    setting: config.setting ?? 'app.tenant_id',
    rls: config.rls ?? false,
    tables: analyses,
    hints: [...ownerHints(owner, analyses), ...hintsFor(catalog, analyses, roles, tenants)],
    views: viewsOver(catalog, roles),
  };
}

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

type Resolver = (name: string, keyPath: string) => TableName | undefined;

/**
 * A name as the user wrote it (config, --owner, --tenants), parsed like SQL (sql-text.ts:
 * `"my.schema".t` is schema `my.schema`): a quoted part matches exactly; an unquoted part
 * matches as written, else folded to lower case as SQL would (`Orders` finds `orders` when
 * there is no `Orders`). A bare name is looked up in the schemas read, preferring public.
 * Unknown: undefined (the caller decides). Ambiguous: a UsageError naming the key path.
 */
function nameResolver(catalog: Catalog): Resolver {
  return (name, keyPath) => {
    const parts = parseQualifiedName(name, keyPath);
    if (parts.length > 2)
      throw new UsageError(`${keyPath}: "${name}" has ${parts.length} dotted parts; a table is schema.table`, {
        code: 'name-invalid',
        hint: 'quote a part that holds a dot: "my.schema".orders',
      });
    const [schemaPart, tablePart] = parts.length === 2 ? parts : [undefined, parts[0] as NamePart];
    // 0: as written, 1: folded to lower case; a table's rank is its worse part's.
    const rank = (part: NamePart, stored: string): number =>
      part.text === stored ? 0 : !part.quoted && part.text.toLowerCase() === stored ? 1 : 2;
    const ranked = catalog.tables
      .map((t) => ({ name: t.name, rank: Math.max(rank(tablePart, t.table), schemaPart ? rank(schemaPart, t.schema) : 0) }))
      .filter((t) => t.rank < 2);
    const best = Math.min(...ranked.map((t) => t.rank));
    const found = ranked.filter((t) => t.rank === best).map((t) => t.name);
    if (found.length <= 1) return found[0];
    const inPublic = found.find((n) => splitTableName(n).schema === 'public');
    if (inPublic) return inPublic;
    throw new UsageError(`${keyPath}: "${name}" is ambiguous: ${found.join(', ')}`, {
      code: 'name-ambiguous',
      hint: `write it with its schema, e.g. "${writtenName(found[0] as string, false)}"`,
    });
  };
}

/** A table the plan will create (the tenants table), from its name as written: in the owner's schema unless it names one. */
function newTableName(name: string, keyPath: string, ownerSchema: string): TableName {
  const parts = parseQualifiedName(name, keyPath);
  if (parts.length > 2)
    throw new UsageError(`${keyPath}: "${name}" has ${parts.length} dotted parts; a table is schema.table`, {
      code: 'name-invalid',
      hint: 'quote a part that holds a dot: "my.schema".organizations',
    });
  const [schema, table] = parts.length === 2 ? (parts as [NamePart, NamePart]) : [{ text: ownerSchema }, parts[0] as NamePart];
  return tableName(schema.text, table.text);
}

function unknownTable(name: string, keyPath: string, catalog: Catalog): UsageError {
  const bare = parseQualifiedName(name, keyPath).at(-1)?.text ?? name;
  const near = catalog.tables.filter(
    (t) => t.table.toLowerCase() === bare.toLowerCase() || t.table.toLowerCase().startsWith(bare.toLowerCase().slice(0, 4)),
  );
  return new UsageError(`${keyPath}: no table named "${name}" in the schemas read (${catalog.schemas.join(', ') || 'none'})`, {
    code: 'table-not-found',
    hint:
      near.length > 0
        ? `did you mean ${near
            .slice(0, 5)
            .map((t) => writtenName(t.name, false))
            .join(', ')}?`
        : 'check the name, or read its schema with --schema',
  });
}

interface Override {
  config: TableConfig;
  path: string;
  via?: string[];
}

function resolveOverrides(entries: Record<string, TableConfig>, resolve: Resolver, catalog: Catalog): Map<TableName, Override> {
  const overrides = new Map<TableName, Override>();
  for (const [name, config] of Object.entries(entries)) {
    const path = `tenancy.tables.${name}`;
    const table = resolve(name, path);
    if (!table) throw unknownTable(name, path, catalog);
    const earlier = overrides.get(table);
    if (earlier)
      throw new UsageError(`${path}: ${table} is already configured at ${earlier.path}`, {
        code: 'model-invalid',
        hint: 'keep one entry per table',
      });
    overrides.set(table, { config, path, ...(typeof config === 'object' && config.via ? { via: config.via } : {}) });
  }
  return overrides;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function tableOf(name: TableName): string {
  return splitTableName(name).table;
}

/** English plural to singular, for table names: companies → company, addresses → address, organization stays. */
export function singular(word: string): string {
  if (/ies$/i.test(word)) return word.slice(0, -3) + 'y';
  if (/(ss|x|ch|sh|z)es$/i.test(word)) return word.slice(0, -2);
  if (/ses$/i.test(word)) return word.slice(0, -1);
  if (/[^su]s$/i.test(word)) return word.slice(0, -1);
  return word;
}

// ---------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------

interface Graph {
  owner: TableName;
  /** Outgoing hops per table, sorted by column names (so enumeration order is the tie-break order). */
  out: Map<TableName, Hop[]>;
  /** Hops to the owner from each table (shortest, any hop / NOT NULL hops only). */
  dist: Map<TableName, number>;
  distNotNull: Map<TableName, number>;
}

function hopOf(fk: CatalogForeignKey): Hop {
  return {
    table: fk.table,
    columns: fk.columns,
    references: fk.references,
    referencedColumns: fk.referencedColumns,
    nullable: !fk.notNull,
    constraint: fk.name,
  };
}

function compareHops(a: Hop, b: Hop): number {
  return (
    compareNames(a.columns.join(','), b.columns.join(',')) ||
    compareNames(a.references, b.references) ||
    compareNames(a.constraint, b.constraint)
  );
}

function buildGraph(catalog: Catalog, owner: TableName, blocked: (name: TableName) => boolean): Graph {
  const present = new Set(catalog.tables.map((t) => t.name));
  const out = new Map<TableName, Hop[]>();
  const into = new Map<TableName, Hop[]>();
  for (const table of catalog.tables) {
    if (table.name === owner || blocked(table.name)) continue;
    const hops = table.foreignKeys
      .filter((fk) => fk.references !== table.name && present.has(fk.references) && !blocked(fk.references))
      .map(hopOf)
      .sort(compareHops);
    out.set(table.name, hops);
    for (const hop of hops) push(into, hop.references, hop);
  }
  const distances = (notNullOnly: boolean): Map<TableName, number> => {
    const dist = new Map<TableName, number>([[owner, 0]]);
    let frontier = [owner];
    for (let d = 1; frontier.length > 0; d++) {
      const next: TableName[] = [];
      for (const node of frontier) {
        for (const hop of into.get(node) ?? []) {
          if ((notNullOnly && hop.nullable) || dist.has(hop.table)) continue;
          dist.set(hop.table, d);
          next.push(hop.table);
        }
      }
      frontier = next;
    }
    return dist;
  };
  return { owner, out, dist: distances(false), distNotNull: distances(true) };
}

/**
 * Simple paths of exactly `length` hops from `start` to the owner, in tie-break order
 * (hop by hop, by column names), until `want` are found or the budget runs out.
 */
function pathsOfLength(
  graph: Graph,
  start: TableName,
  length: number,
  notNullOnly: boolean,
  want: number,
  budget: { left: number },
): Hop[][] {
  const found: Hop[][] = [];
  const dist = notNullOnly ? graph.distNotNull : graph.dist;
  const path: Hop[] = [];
  const visited = new Set<TableName>([start]);
  const walk = (node: TableName, left: number): void => {
    for (const hop of graph.out.get(node) ?? []) {
      if (found.length >= want || budget.left-- <= 0) return;
      if (notNullOnly && hop.nullable) continue;
      const next = hop.references;
      if (visited.has(next)) continue;
      if (next === graph.owner) {
        if (left === 1) found.push([...path, hop]);
        continue;
      }
      const rest = dist.get(next);
      if (rest === undefined || rest > left - 1) continue;
      path.push(hop);
      visited.add(next);
      walk(next, left - 1);
      visited.delete(next);
      path.pop();
    }
  };
  walk(start, length);
  return found;
}

interface Derived {
  via: Hop[];
  fallbacks: Hop[][];
  /** Paths as good as `via` (as long, as many nullable hops) whose first hop is another foreign key. */
  alternatives?: Hop[][];
}

function derive(graph: Graph, table: TableName, prefer: string | undefined): Derived | undefined {
  const shortest = graph.dist.get(table);
  if (shortest === undefined) return undefined;
  const budget = { left: searchBudget };
  const notNull = graph.distNotNull.get(table);
  if (notNull !== undefined) {
    const found = pathsOfLength(graph, table, notNull, true, maxFallbacks * 4, budget);
    const [via, ...alternatives] = choose(found, () => true, prefer);
    if (via) return { via, fallbacks: [], alternatives };
  }
  let via: Hop[] | undefined;
  let alternatives: Hop[][] = [];
  let fallbacks: Hop[][] = [];
  for (let length = shortest; length <= shortest + fallbackSlack && fallbacks.length < maxFallbacks && budget.left > 0; length++) {
    // Of paths as short, those with fewer nullable hops resolve more rows: they go first.
    const found = pathsOfLength(graph, table, length, false, maxFallbacks * 4, budget).sort((a, b) => nullableHops(a) - nullableHops(b));
    if (!via && found.length > 0) {
      const best = nullableHops(found[0] as Hop[]);
      [via, ...alternatives] = choose(found, (path) => nullableHops(path) === best, prefer);
      found.splice(0, found.length, ...found.filter((path) => path !== via));
    }
    if (via) fallbacks = usefulFallbacks(via, [...fallbacks, ...found]);
  }
  return via ? { via, fallbacks, alternatives } : undefined;
}

/**
 * The best paths (those `tied` admits, in tie-break order), one per first hop: the chosen
 * one first (the preferred first hop when it is among them), then its alternatives.
 */
function choose(found: Hop[][], tied: (path: Hop[]) => boolean, prefer: string | undefined): Hop[][] {
  const best: Hop[][] = [];
  for (const path of found) {
    if (!tied(path)) break;
    if (!best.some((b) => b[0]?.constraint === path[0]?.constraint)) best.push(path);
  }
  const preferred = best.findIndex((path) => path[0]?.constraint === prefer);
  if (preferred > 0) best.unshift(...best.splice(preferred, 1));
  return best;
}

function nullableHops(path: Hop[]): number {
  return path.filter((hop) => hop.nullable).length;
}

/**
 * A later path is worth trying only if it can resolve a row every earlier path left
 * unresolved: one that follows, from the same row, every nullable hop of an earlier path
 * is NULL whenever that one is, and is dropped.
 */
function usefulFallbacks(via: Hop[], others: Hop[][]): Hop[][] {
  const prefixKeys = (path: Hop[]): string[] => {
    let prefix = '';
    return path.map((h) => (prefix += `>${h.table}:${h.constraint}`));
  };
  const nullableKeys = (path: Hop[]): string[] => prefixKeys(path).filter((_, i) => path[i]?.nullable);
  const kept: Hop[][] = [];
  const earlier = [nullableKeys(via)];
  for (const path of others) {
    if (kept.length >= maxFallbacks) break;
    const keys = new Set(prefixKeys(path));
    if (earlier.some((nullable) => nullable.every((k) => keys.has(k)))) continue;
    kept.push(path);
    earlier.push(nullableKeys(path));
  }
  return kept;
}

/** `via` in the model: first-hop columns tried in order, each continued by its parent's own derivation. */
function applyViaOverrides(
  overrides: Map<TableName, Override>,
  tables: Map<TableName, CatalogTable>,
  owner: TableName,
  blocked: (name: TableName) => boolean,
  derivations: Map<TableName, Derived>,
  key: string,
): void {
  const resolving = new Set<TableName>();
  const resolveVia = (name: TableName): Derived | undefined => {
    const done = derivations.get(name);
    if (done) return done;
    const override = overrides.get(name);
    if (!override?.via || resolving.has(name)) return undefined;
    resolving.add(name);
    const table = tables.get(name) as CatalogTable;
    const paths = override.via.map((column, i) => {
      const keyPath = `${override.path}.via[${i}]`;
      const fk = findForeignKey(table, column, key);
      if (!fk) {
        const fks = table.foreignKeys.map((f) => f.columns.join(','));
        throw new UsageError(`${keyPath}: "${column}" is no foreign key of ${name}`, {
          code: 'via-invalid',
          hint: fks.length > 0 ? `its foreign keys: ${fks.join('; ')}` : `${name} has no foreign key`,
        });
      }
      if (fk.references === name)
        throw new UsageError(`${keyPath}: "${column}" references ${name} itself`, {
          code: 'via-invalid',
          hint: 'a self-reference never derives the key: name a foreign key to a parent table',
        });
      const hop = hopOf(fk);
      if (fk.references === owner) return [hop];
      const parent = blocked(fk.references) ? undefined : resolveVia(fk.references);
      if (!parent)
        throw new UsageError(`${keyPath}: "${column}" references ${fk.references}, which reaches no owner`, {
          code: 'via-invalid',
          hint: `${fk.references} is no tenant table: name a foreign key that leads to the owner`,
        });
      return [hop, ...parent.via];
    });
    resolving.delete(name);
    const [via, ...fallbacks] = paths as [Hop[], ...Hop[][]];
    const derived = { via, fallbacks };
    derivations.set(name, derived);
    return derived;
  };
  for (const name of overrides.keys()) resolveVia(name);
}

/**
 * The foreign key `via` names: by its columns, its first column, or its columns without the
 * key, as conflicts policies name an edge (edgeNames), so a model written before the upgrade
 * still fits once `scaffold --citus` or `--composite` made the foreign keys `(key, column)`.
 */
function findForeignKey(table: CatalogTable, column: string, key: string): CatalogForeignKey | undefined {
  return (
    table.foreignKeys.find((fk) => fk.columns.join(',') === column) ??
    table.foreignKeys.find((fk) => fk.columns[0] === column) ??
    table.foreignKeys.find((fk) => edgeNames(fk.columns, key).includes(column))
  );
}

// ---------------------------------------------------------------------------------------
// Consistency edges and the model's per-table settings
// ---------------------------------------------------------------------------------------

/**
 * Every foreign key from this table to a tenant table or the owner, but the derivation's
 * first hop. The owner's own references count too: after the upgrade it carries the key,
 * so a row of it that points into another tenant is a cross-tenant reference as well.
 */
/**
 * The names a conflicts policy may give an edge: its columns (`assignee_id`, `a,b`), its first
 * column, and the same without the key, which a foreign key made composite (`scaffold --citus`)
 * holds beside them: `organization_id,assignee_id` is still `assignee_id`.
 */
function edgeNames(columns: string[], key: string): string[] {
  const own = columns.filter((c) => c !== key);
  return [columns.join(','), columns[0] as string, own.join(','), own[0] ?? ''];
}

function consistencyEdges(
  table: CatalogTable,
  firstHop: string | undefined,
  roles: Map<TableName, TableRole>,
  conflicts: Record<string, ConflictPolicy>,
  key: string,
): ConsistencyEdge[] {
  return table.foreignKeys
    .filter((fk) => fk.name !== firstHop && (roles.get(fk.references) === 'tenant' || roles.get(fk.references) === 'owner'))
    .map(hopOf)
    .sort(compareHops)
    .map((hop) => ({
      columns: hop.columns,
      references: hop.references,
      referencedColumns: hop.referencedColumns,
      constraint: hop.constraint,
      nullable: hop.nullable,
      selfReference: hop.references === table.name,
      policy:
        edgeNames(hop.columns, key)
          .map((name) => conflicts[name])
          .find((p) => p !== undefined) ?? 'fail',
    }));
}

function validateTableConfig(
  table: CatalogTable,
  role: TableRole,
  config: TenantTableConfig,
  edges: ConsistencyEdge[],
  path: string,
  key: string,
): void {
  if (config.unresolved && role !== 'tenant') {
    throw new UsageError(`${path}.unresolved: ${table.name} is no tenant table (its role is ${role})`, {
      code: 'model-invalid',
      hint: 'only tenant tables have rows to resolve: remove the setting',
    });
  }
  for (const [column, policy] of Object.entries(config.conflicts ?? {})) {
    const edge = edges.find((e) => e.columns.join(',') === column) ?? edges.find((e) => edgeNames(e.columns, key).includes(column));
    if (!edge) {
      const names = edges.map((e) => e.columns.join(','));
      throw new UsageError(`${path}.conflicts.${column}: "${column}" is no consistency edge of ${table.name}`, {
        code: 'model-invalid',
        hint:
          names.length > 0
            ? `its consistency edges: ${names.join(', ')}`
            : `${table.name} has no consistency edge (no other foreign key to a tenant table or the owner)`,
      });
    }
    if (policy === 'detach' && !edge.nullable) {
      throw new UsageError(`${path}.conflicts.${column}: "detach" sets ${column} to NULL, but ${table.name}.${column} is NOT NULL`, {
        code: 'model-invalid',
        hint: 'choose delete, keep or fail for this column',
      });
    }
  }
}

// ---------------------------------------------------------------------------------------
// Hints
// ---------------------------------------------------------------------------------------

function hintsFor(catalog: Catalog, analyses: TableAnalysis[], roles: Map<TableName, TableRole>, tenants: TableName): Hint[] {
  const byNorm = new Map<string, CatalogTable[]>();
  const norm = (s: string): string => s.toLowerCase().replace(/_/g, '');
  for (const t of catalog.tables) push(byNorm, norm(t.table), t);
  const tables = new Map(catalog.tables.map((t) => [t.name, t]));
  // PostgreSQL 18 is the first to add a foreign key NOT VALID to a partitioned table.
  const notValidOnPartitioned = (catalog.serverVersion ?? 0) >= 180000;
  // Many tables share a column name (external_ref_id...): each guess is made once per schema.
  const guesses = new Map<string, TableName | null>();
  const hints: Hint[] = [];
  for (const analysis of analyses) {
    const table = tables.get(analysis.table) as CatalogTable;
    if (!table.primaryKey) {
      const unique = uniqueNotNullColumn(table);
      hints.push({
        table: table.name,
        hint: unique
          ? `no primary key: rows are told apart and batched by the unique NOT NULL column ${unique}`
          : 'no primary key: the backfill walks it by physical ranges (blocks), and rows are told apart by their whole content',
      });
    }
    const referencing = new Set(table.foreignKeys.flatMap((fk) => fk.columns));
    for (const column of table.columns) {
      const base = referenceBase(column.name);
      if (!base || referencing.has(column.name)) continue;
      const memoKey = `${table.schema}\0${base}`;
      let target = guesses.get(memoKey);
      if (target === undefined) guesses.set(memoKey, (target = guessTarget(base, undefined, table.schema, byNorm, norm) ?? null));
      // A table's own primary key names the table itself: it is no reference.
      const ownKey = table.primaryKey?.includes(column.name) === true && (table.primaryKey.length === 1 || target === table.name);
      if (ownKey) continue;
      // A table is never its own guess.
      if (target === table.name) target = guessTarget(base, table.name, table.schema, byNorm, norm) ?? null;
      // Text that can reference no table's key (URLs, external ids) is no reference either.
      if (isText(column.type) && !(target && keyIsText(tables.get(target)))) continue;
      const partitioned = table.kind === 'partitioned' && !notValidOnPartitioned;
      hints.push({
        table: table.name,
        column: column.name,
        hint: target
          ? `looks like a reference to ${target} but has no foreign key: the graph cannot follow it (${partitioned ? 'add the foreign key to each partition, NOT VALID then VALIDATE: this PostgreSQL refuses NOT VALID on a partitioned table' : 'add the foreign key, NOT VALID first on a live database'})`
          : 'looks like a reference but has no foreign key and no table is named like it (polymorphic?): the graph cannot follow it',
      });
    }
    for (const fk of table.foreignKeys) {
      if (!fk.partitions || !table.partitions) continue;
      const without = table.partitions.filter((p) => !fk.partitions?.some((h) => h.table === p.name)).map((p) => p.name);
      if (without.length === 0) continue;
      hints.push({
        table: table.name,
        column: fk.columns.join(','),
        hint: `the foreign key to ${fk.references} is declared on some partitions only: ${someNames(without)} ${without.length === 1 ? 'has' : 'have'} none, so rows there may reference nothing (counted as unresolved)`,
      });
    }
    if (analysis.role === 'global' && table.name !== tenants) {
      const into = table.foreignKeys.filter(
        (fk) => fk.references !== table.name && (roles.get(fk.references) === 'tenant' || roles.get(fk.references) === 'owner'),
      );
      for (const fk of into) {
        hints.push({
          table: table.name,
          column: fk.columns.join(','),
          hint: `global, yet references ${roles.get(fk.references)} table ${fk.references}: every tenant would share rows that point into one; give it a path ("via") or mark it "ignore"`,
        });
      }
    }
  }
  return hints;
}

/** The first column of a table with a unique, valid, non-partial index whose only column is NOT NULL: what batches a table without a primary key. */
export function uniqueNotNullColumn(table: CatalogTable): string | undefined {
  for (const index of table.indexes) {
    const [column] = index.columns;
    if (!index.unique || !index.valid || index.partial || index.columns.length !== 1 || !column) continue;
    if (table.columns.find((c) => c.name === column)?.notNull) return column;
  }
  return undefined;
}

function isText(type: string): boolean {
  return /^(text|character varying|varchar|character|char|citext|name)\b/.test(type);
}

function keyIsText(table: CatalogTable | undefined): boolean {
  const pk = table?.primaryKey;
  if (!table || !pk || pk.length !== 1) return false;
  return isText(table.columns.find((c) => c.name === pk[0])?.type ?? '');
}

/**
 * A weak owner: no table reaches it, or (analyze with data) most rows of the tables that
 * reach it land in another tenant along some other foreign key. Either says the owner (or
 * the model) is likely the wrong one.
 */
export function ownerHints(owner: TableName, analyses: TableAnalysis[]): Hint[] {
  const tenants = analyses.filter((t) => t.role === 'tenant');
  if (tenants.length === 0) {
    return [
      {
        table: owner,
        hint: 'weak owner: no table reaches it through foreign keys, so the upgrade would key the owner alone; is this the table whose rows are the tenants?',
      },
    ];
  }
  const counted = tenants.filter((t) => t.consistency.some((e) => e.conflicts !== undefined));
  const rows = counted.reduce((n, t) => n + t.estimatedRows, 0);
  const conflicts = counted.reduce((n, t) => n + Math.max(0, ...t.consistency.map((e) => e.conflicts ?? 0)), 0);
  if (rows > 0 && conflicts * 2 > rows) {
    return [
      {
        table: owner,
        hint: `weak owner: ${conflicts} of about ${rows} rows of the tenant tables with other foreign keys conflict (a reference lands in another tenant than the row): the data does not split by ${owner}`,
      },
    ];
  }
  return [];
}

/**
 * Views and materialized views that read a tenant table or the owner, directly or through
 * other views: what row level security must reach (a view runs as its owner unless it is
 * security_invoker; a materialized view holds a copy every reader sees whole).
 */
function viewsOver(catalog: Catalog, roles: Map<TableName, TableRole>): ViewAnalysis[] {
  const views = new Map((catalog.views ?? []).map((v) => [v.name, v]));
  const memo = new Map<TableName, TableName[]>();
  const reached = (name: TableName, seen: Set<TableName>): TableName[] => {
    const done = memo.get(name);
    if (done) return done;
    const view = views.get(name);
    if (!view || seen.has(name)) return [];
    seen.add(name);
    const found = new Set<TableName>();
    for (const read of view.reads) {
      const role = roles.get(read);
      if (role === 'tenant' || role === 'owner') found.add(read);
      for (const t of reached(read, seen)) found.add(t);
    }
    const list = [...found].sort(compareNames);
    memo.set(name, list);
    return list;
  };
  const result: ViewAnalysis[] = [];
  for (const view of views.values()) {
    const tenantTables = reached(view.name, new Set());
    if (tenantTables.length === 0) continue;
    result.push({
      view: view.name,
      kind: view.kind,
      owner: view.owner,
      securityInvoker: view.securityInvoker,
      ownerBypassesRls: view.ownerBypassesRls,
      tenantTables,
    });
  }
  return result.sort((a, b) => compareNames(a.view, b.view));
}

/** `user_id` → `user`, `createdByUserId` → `created_by_user`; undefined for a column that does not look like a reference. */
function referenceBase(column: string): string | undefined {
  const snake = /^(.+)_id$/i.exec(column);
  if (snake) return snake[1]?.toLowerCase();
  const camel = /^(.*[a-z0-9])Id$/.exec(column);
  if (camel) return camel[1]?.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
  return undefined;
}

/** The table a column probably references: the longest trailing words of its name that name a table, singular or plural. */
function guessTarget(
  base: string,
  self: TableName | undefined,
  schema: string,
  byNorm: Map<string, CatalogTable[]>,
  norm: (s: string) => string,
): TableName | undefined {
  const words = base.split('_').filter(Boolean);
  for (let i = 0; i < words.length; i++) {
    const w = words.slice(i).join('_');
    for (const form of [w, `${w}s`, `${w}es`, w.replace(/y$/, 'ies')]) {
      const found = (byNorm.get(norm(form)) ?? []).filter((t) => t.name !== self);
      if (found.length === 0) continue;
      return (found.find((t) => t.schema === schema) ?? found.find((t) => t.schema === 'public') ?? found[0])?.name;
    }
  }
  return undefined;
}
