/**
 * The tenancy model's shapes, shared by `tenancy analyze`, `check` and `scaffold`
 * (the contract is docs/tenancy.md). Plain data: the catalog as read from PostgreSQL, the
 * model as written in tenantify.config.json, and the analysis the foreign-key graph
 * yields. Nothing here does I/O.
 *
 * Table names are `schema.table`, each part as PostgreSQL stores it (unquoted:
 * `public.tasks`, `public.teamMember`); `quoteQualified()` in sql-text.ts quotes them
 * for SQL text.
 */

export type TableName = string;

// ---------------------------------------------------------------------------------------
// The catalog, read in one pass (catalog.ts)
// ---------------------------------------------------------------------------------------

export interface CatalogColumn {
  name: string;
  /** format_type(), e.g. `integer`, `uuid`, `text`, `character varying(255)`. */
  type: string;
  notNull: boolean;
  hasDefault: boolean;
  /** COMMENT ON COLUMN, when there is one. */
  comment?: string;
  /** An identity column: GENERATED ALWAYS or BY DEFAULT AS IDENTITY. */
  identity?: 'always' | 'by default';
}

export interface CatalogForeignKey {
  /** Constraint name. */
  name: string;
  table: TableName;
  columns: string[];
  references: TableName;
  referencedColumns: string[];
  /** false for a foreign key added NOT VALID and not validated since. */
  validated: boolean;
  /** Every column of the key is NOT NULL. */
  notNull: boolean;
  /** pg_constraint.confdeltype as a word: `cascade`, `restrict`, `no action`, `set null`, `set default`. */
  onDelete: string;
  /** pg_get_constraintdef(): `FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE` (what puts it back exactly). */
  definition?: string;
  /**
   * A partitioned table's foreign key declared on its partitions rather than on itself: the
   * partitions that hold it, each with its constraint's name (`name` is the first one's).
   */
  partitions?: { table: TableName; name: string }[];
}

export interface CatalogKey {
  name: string;
  kind: 'primary' | 'unique';
  columns: string[];
  /** pg_get_constraintdef(): `PRIMARY KEY (id)`, `UNIQUE (email)`. */
  definition?: string;
}

export interface CatalogIndex {
  name: string;
  /** Key columns in order; an expression column is null. */
  columns: (string | null)[];
  unique: boolean;
  /** false for an INVALID index (a CONCURRENTLY build that failed). */
  valid: boolean;
  /** The index has a WHERE clause. */
  partial: boolean;
  /** pg_get_indexdef(): `CREATE UNIQUE INDEX ... ON public.users USING btree (username)`. */
  definition?: string;
  /** The index is a primary key's, a unique or an exclusion constraint's. */
  constraint?: boolean;
}

export interface CatalogCheck {
  name: string;
  /** pg_get_constraintdef(), e.g. `CHECK ((organization_id IS NOT NULL)) NOT VALID`. */
  definition: string;
  validated: boolean;
}

export type PolicyCommand = 'all' | 'select' | 'insert' | 'update' | 'delete';

export interface CatalogPolicy {
  name: string;
  command: PolicyCommand;
  permissive: boolean;
  /** Role names; `public` for every role. */
  roles: string[];
  /** pg_get_expr() of polqual, or null. */
  using: string | null;
  /** pg_get_expr() of polwithcheck, or null. */
  withCheck: string | null;
}

export interface CatalogTable {
  name: TableName;
  schema: string;
  table: string;
  /** A partitioned table is one table here: its partitions are not tables of the catalog. */
  kind: 'table' | 'partitioned';
  /** A partitioned table's partitions (direct ones, by name), each with its own indexes' names. */
  partitions?: CatalogPartition[];
  columns: CatalogColumn[];
  primaryKey: string[] | null;
  uniques: CatalogKey[];
  /** The foreign keys this table holds (outgoing). */
  foreignKeys: CatalogForeignKey[];
  indexes: CatalogIndex[];
  checks: CatalogCheck[];
  rls: { enabled: boolean; forced: boolean };
  policies: CatalogPolicy[];
  /** pg_class.reltuples (an estimate; 0 when never analyzed). */
  estimatedRows: number;
  owner: string;
  /** COMMENT ON TABLE, when there is one. */
  comment?: string;
  /**
   * How Citus places the table (pg_dist_partition): read only when the database has the
   * citus extension (absent otherwise); null for a table Citus does not know (a plain local table).
   */
  distribution?: CatalogDistribution | null;
}

export interface CatalogPartition {
  name: TableName;
  /** The partition's own foreign keys (declared on it, not cloned from the parent). */
  foreignKeys: string[];
}

/** A view or materialized view (catalog.ts), with the tables it reads. */
export interface CatalogView {
  name: TableName;
  kind: 'view' | 'materialized';
  owner: string;
  /** The owner is a superuser or has BYPASSRLS: row level security does not apply to it. */
  ownerBypassesRls: boolean;
  /** `security_invoker` as set on the view: true, false, or null when not set (PostgreSQL's default: off). */
  securityInvoker: boolean | null;
  /** Tables and views it reads directly (pg_depend through its rewrite rule). */
  reads: TableName[];
}

/** A table's row of pg_dist_partition. */
export interface CatalogDistribution {
  /**
   * `hash`: sharded by `column`; `reference`: copied whole to every node; `local`: a Citus
   * local table (on the coordinator, in the metadata); `append`/`range`: the older methods.
   */
  method: 'hash' | 'reference' | 'local' | 'append' | 'range';
  /** The distribution column (hash, append, range); null for reference and local tables. */
  column: string | null;
  /** Tables of one colocation group have their shards of a key on the same node (joins stay on it). */
  colocationId: number;
}

export interface Catalog {
  /** Every ordinary and partitioned table of the schemas read, sorted by name. */
  tables: CatalogTable[];
  /** The schemas read. */
  schemas: string[];
  /** Installed extensions by name (`citus`, ...). */
  extensions: string[];
  /** Views and materialized views of the schemas read (absent from hand-made catalogs). */
  views?: CatalogView[];
  /** server_version_num, e.g. 150004 (absent from hand-made catalogs: the oldest supported is assumed). */
  serverVersion?: number;
}

// ---------------------------------------------------------------------------------------
// The model, as kept in tenantify.config.json under `tenancy` (model.ts validates it)
// ---------------------------------------------------------------------------------------

export type UnresolvedPolicy = 'fail' | 'delete' | 'keep';
export type ConflictPolicy = 'fail' | 'detach' | 'delete' | 'keep';

export interface TenantTableConfig {
  /** First-hop columns tried in order, overriding the shortest path. */
  via?: string[];
  unresolved?: UnresolvedPolicy;
  /** Policy per first-hop column of a consistency edge. */
  conflicts?: Record<string, ConflictPolicy>;
}

export type TableConfig = 'global' | 'ignore' | TenantTableConfig;

export interface TenancyConfig {
  owner: string;
  /** Default `organizations`. */
  tenants?: string;
  /** Default: the tenants table's singular + `_id`. */
  key?: string;
  /** Default `app.tenant_id`. */
  setting?: string;
  /** Default false. */
  rls?: boolean;
  tables?: Record<string, TableConfig>;
}

// ---------------------------------------------------------------------------------------
// The analysis: what the foreign-key graph says of every table (graph.ts)
// ---------------------------------------------------------------------------------------

/** One foreign key followed from a table to the table it references. */
export interface Hop {
  table: TableName;
  columns: string[];
  references: TableName;
  referencedColumns: string[];
  /** Some column of the hop is nullable. */
  nullable: boolean;
  /** The foreign key constraint's name. */
  constraint: string;
}

export type TableRole = 'owner' | 'tenant' | 'global' | 'ignore';

/** A foreign key between tenant tables (or to the owner) other than the derivation's first hop. */
export interface ConsistencyEdge {
  columns: string[];
  references: TableName;
  referencedColumns: string[];
  constraint: string;
  nullable: boolean;
  selfReference: boolean;
  /** From the model; `fail` when it says nothing. */
  policy: ConflictPolicy;
  /** Exact count of conflicting rows (analyze with data only). */
  conflicts?: number;
}

export interface TableAnalysis {
  table: TableName;
  role: TableRole;
  /** Tenant tables: the derivation path to the owner, first hop first. Empty otherwise. */
  via: Hop[];
  /** Tenant tables whose path has a nullable hop: the other paths, tried in order (COALESCE). */
  fallbacks: Hop[][];
  consistency: ConsistencyEdge[];
  /** Tenant tables: the policy for rows no path resolves. */
  unresolvedPolicy: UnresolvedPolicy;
  /** Tables that reference this one (global tables: which tenant tables use them). */
  referencedBy: TableName[];
  /** Hops to the owner along `via` (owner 0; global and ignored tables -1). */
  depth: number;
  estimatedRows: number;
  /** Exact count of rows no path resolves (analyze with data only). */
  unresolved?: number;
  /** A partitioned table's partitions. */
  partitions?: TableName[];
  /**
   * Tenant tables with paths as good as the chosen one (as short, as many NOT NULL hops) that
   * start with another foreign key: each first hop, whether it was chosen, and (analyze with
   * data) how many rows would conflict with the other candidates if it were chosen.
   */
  ambiguous?: AmbiguousChoice[];
}

export interface AmbiguousChoice {
  columns: string[];
  references: TableName;
  constraint: string;
  chosen: boolean;
  conflicts?: number;
}

export interface Hint {
  table: TableName;
  column?: string;
  hint: string;
}

/** The resolved model: every default filled in, every table placed. */
export interface TenancyAnalysis {
  owner: TableName;
  tenants: TableName;
  /** The tenants table exists already (else the plan creates it). */
  tenantsExists: boolean;
  /** The owner is the tenants table: no table created, the owner's primary key plays the key there. */
  ownerIsTenants: boolean;
  key: string;
  setting: string;
  rls: boolean;
  /** Every table of the schemas read, parents before children (owner first, then tenant tables by depth, then global and ignored). */
  tables: TableAnalysis[];
  hints: Hint[];
  /** Views and materialized views that read tenant tables (directly or through other views). */
  views?: ViewAnalysis[];
}

export interface ViewAnalysis {
  view: TableName;
  kind: 'view' | 'materialized';
  owner: string;
  /** `security_invoker` as set on the view (true: runs as the reader, so the reader's row level security applies); null when never set (off). */
  securityInvoker: boolean | null;
  ownerBypassesRls: boolean;
  /** The tenant tables (and the owner) it reads, through other views included. */
  tenantTables: TableName[];
}
