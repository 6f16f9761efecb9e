/**
 * What the tenancy changes in schema.prisma, decided from the scaffold's model: the tenants
 * model (when the plan creates the table), per keyed table the key field, the relation both
 * ways and the key's `@@index`. Names follow the schema's own convention: camelCase fields
 * `@map`ped to snake_case columns, or fields named as their columns (as `prisma db pull`
 * writes them). Constraint names are given with `map:` only where Prisma's default differs.
 */
import { singular } from '../graph.js';
import {
  camelCase,
  pascalCase,
  usesMappedCamelCase,
  type ModelEdit,
  type NewModel,
  type PrismaField,
  type PrismaModel,
} from './schema-file.js';

export interface KeyedTableFacts {
  /** The table's name without its schema. */
  table: string;
  keyColumn: string;
  /** The plan adds the key column (false: it is the table's own, e.g. the owner is the tenants table). */
  addsKey: boolean;
  /** The key stays nullable after the upgrade (`unresolved: keep`). */
  optional: boolean;
  /** The key's foreign key, when the plan adds it. */
  foreignKey: string | undefined;
  /** The key's index, when the plan builds it. */
  index: string | undefined;
}

export interface TenancyFacts {
  tenantsTable: string;
  /** The plan creates the tenants table (id bigint identity, the legacy owner id, created_at). */
  createsTenants: boolean;
  tenantsPk: string;
  ownerTable: string;
  legacyColumn: string;
  keyed: KeyedTableFacts[];
  /** --composite: unique (key, id) constraints the plan adds. */
  uniques?: { table: string; name: string; columns: string[] }[];
  /** --composite: foreign keys that include the key, beside the legacy ones. */
  compositeForeignKeys?: {
    table: string;
    name: string;
    columns: string[];
    references: string;
    referencedColumns: string[];
    onUpdateCascade: boolean;
  }[];
}

export interface SchemaEdits {
  edits: ModelEdit[];
  added: NewModel[];
  /** Models edited or added: the formatter lays out these. */
  touched: string[];
  /** Keyed tables no model maps to: left out of schema.prisma, said to the user. */
  unmapped: string[];
}

export function tenancyEdits(models: PrismaModel[], facts: TenancyFacts): SchemaEdits {
  const camel = usesMappedCamelCase(models);
  const pascal = models.some((m) => m.table !== m.name && /^[A-Z]/.test(m.name));
  const fieldName = (column: string) => (camel ? camelCase(column) : column);
  const mapped = (name: string, column: string) => (name === column ? '' : ` @map("${column}")`);
  const byTable = (table: string) => models.find((m) => m.table === table);
  const edits = new Map<string, ModelEdit>();
  const editOf = (model: string) => {
    let edit = edits.get(model);
    if (!edit) edits.set(model, (edit = { model, fields: [], attributes: [] }));
    return edit;
  };
  const taken = new Map<string, Set<string>>(models.map((m) => [m.name, new Set(m.fields.map((f) => f.name))]));
  const freeName = (model: string, wanted: string) => {
    const names = taken.get(model) ?? new Set<string>();
    taken.set(model, names);
    let name = wanted;
    for (let i = 2; names.has(name); i++) name = `${wanted}${i}`;
    names.add(name);
    return name;
  };

  // The tenants model: the schema's own, or a new one for the table the plan creates.
  const owner = byTable(facts.ownerTable);
  const ownerId = owner?.fields.find((f) => f.isId);
  let tenants = byTable(facts.tenantsTable);
  let tenantsName: string;
  let tenantsId: { name: string; type: string; nativeType: string | undefined };
  const added: NewModel[] = [];
  let newTenants: NewModel | undefined;
  if (tenants) {
    tenantsName = tenants.name;
    const id = tenants.fields.find((f) => f.column === facts.tenantsPk) as PrismaField;
    tenantsId = { name: id.name, type: id.type, nativeType: id.nativeType };
  } else {
    tenantsName = pascal ? pascalCase(singular(facts.tenantsTable)) : facts.tenantsTable;
    const legacy = fieldName(facts.legacyColumn);
    const created = fieldName('created_at');
    tenantsId = { name: 'id', type: 'BigInt', nativeType: undefined };
    newTenants = {
      name: tenantsName,
      lines: [
        `id BigInt @id @default(autoincrement())`,
        `${legacy} ${ownerId?.type ?? 'Int'} @unique${mapped(legacy, facts.legacyColumn)}${ownerId?.nativeType ? ` ${ownerId.nativeType}` : ''}`,
        `${created} DateTime @default(now())${mapped(created, 'created_at')} @db.Timestamptz(6)`,
      ],
    };
    taken.set(tenantsName, new Set(['id', legacy, created]));
    added.push(newTenants);
    tenants = undefined;
  }

  const unmapped: string[] = [];
  /** The key's field per model, as added here. */
  const keyFields = new Map<string, string>();
  for (const k of facts.keyed) {
    const model = byTable(k.table);
    const existing = model?.fields.find((f) => f.column === k.keyColumn);
    if (!k.addsKey && !k.foreignKey && !k.index) continue;
    if (!model) {
      unmapped.push(k.table);
      continue;
    }
    const edit = editOf(model.name);
    const optional = k.optional ? '?' : '';
    let key: string;
    if (existing) key = existing.name;
    else {
      key = freeName(model.name, fieldName(k.keyColumn));
      edit.fields.push(
        `${key} ${tenantsId.type}${optional}${mapped(key, k.keyColumn)}${tenantsId.nativeType ? ` ${tenantsId.nativeType}` : ''}`,
      );
    }
    keyFields.set(model.name, key);
    if (k.foreignKey) {
      // A second relation between the same two models needs a name on both sides.
      const ambiguous = model.fields.some((f) => f.type === tenantsName);
      const relationName = ambiguous ? `"${model.name}${pascalCase(k.keyColumn)}"` : undefined;
      const relation = freeName(model.name, camel || pascal ? camelCase(tenantsName) : tenantsName);
      const fkMap = k.foreignKey === `${k.table}_${k.keyColumn}_fkey` ? '' : `, map: "${k.foreignKey}"`;
      edit.fields.push(
        `${relation} ${tenantsName}${optional} @relation(${relationName ? `${relationName}, ` : ''}fields: [${key}], references: [${tenantsId.name}], onDelete: NoAction, onUpdate: NoAction${fkMap})`,
      );
      const back = freeName(tenantsName, camel || pascal ? camelCase(model.table) : model.name);
      const backLine = `${back} ${model.name}[]${relationName ? ` @relation(${relationName})` : ''}`;
      if (newTenants) newTenants.lines.push(backLine);
      else editOf(tenantsName).fields.push(backLine);
    }
    if (k.index) {
      const indexMap = k.index === `${k.table}_${k.keyColumn}_idx` ? '' : `, map: "${k.index}"`;
      edit.attributes.push(`@@index([${key}]${indexMap})`);
    }
  }
  // --composite: the unique (key, id) targets, and each foreign key that includes the key as
  // a named relation beside the legacy one (both go to the same model).
  const fieldOf = (model: PrismaModel, column: string) => model.fields.find((f) => f.column === column)?.name ?? keyFields.get(model.name);
  for (const u of facts.uniques ?? []) {
    const model = byTable(u.table);
    if (!model) continue;
    const fields = u.columns.map((c) => fieldOf(model, c));
    const uniqueMap = u.name === `${u.table}_${u.columns.join('_')}_key` ? '' : `, map: "${u.name}"`;
    editOf(model.name).attributes.push(`@@unique([${fields.join(', ')}]${uniqueMap})`);
  }
  for (const fk of facts.compositeForeignKeys ?? []) {
    const model = byTable(fk.table);
    const parent = byTable(fk.references);
    if (!model || !parent) continue;
    const legacy = model.fields.find(
      (f) =>
        f.type === parent.name &&
        !f.list &&
        new RegExp(`fields:\\s*\\[\\s*${fieldOf(model, fk.columns[1] as string)}\\s*\\]`).test(f.attributes),
    );
    const base = legacy?.name ?? (camel || pascal ? camelCase(parent.name) : parent.name);
    const relationName = `"${model.name}${pascalCase(base)}Tenant"`;
    const relation = freeName(model.name, camel || pascal ? `${base}InTenant` : `${base}_in_tenant`);
    const fkMap = fk.name === `${fk.table}_${fk.columns.join('_')}_fkey` ? '' : `, map: "${fk.name}"`;
    const optional = fk.columns.some((c) => model.fields.find((f) => f.column === c)?.optional) ? '?' : '';
    editOf(model.name).fields.push(
      `${relation} ${parent.name}${optional} @relation(${relationName}, fields: [${fk.columns.map((c) => fieldOf(model, c)).join(', ')}], references: [${fk.referencedColumns.map((c) => fieldOf(parent, c)).join(', ')}], onDelete: NoAction, onUpdate: ${fk.onUpdateCascade ? 'Cascade' : 'NoAction'}${fkMap})`,
    );
    const back = freeName(parent.name, camel || pascal ? `${camelCase(model.table)}InTenant` : `${model.name}_in_tenant`);
    editOf(parent.name).fields.push(`${back} ${model.name}[] @relation(${relationName})`);
  }

  if (newTenants) newTenants.lines.push('', `@@map("${facts.tenantsTable}")`);
  if (newTenants && newTenants.name === facts.tenantsTable) newTenants.lines.splice(-2, 2);
  const editList = [...edits.values()];
  return { edits: editList, added, touched: [...editList.map((e) => e.model), ...added.map((m) => m.name)], unmapped };
}
