/**
 * schema.prisma as text: its models with the tables and columns they map to, and the
 * tenancy's edits made the way a Prisma developer writes them (a field per key column, in
 * the schema's own naming convention, `@map` to the column; the relation both ways; an
 * `@@index` for the key's index). Everything outside the touched models stays byte for
 * byte; Prisma's own formatter then lays out the touched models (app/prisma-scaffold.ts).
 */

export interface PrismaField {
  name: string;
  /** The type without `?` or `[]`, e.g. `Int`, `User`. */
  type: string;
  optional: boolean;
  list: boolean;
  /** The column: `@map("...")`, else the field's name. */
  column: string;
  /** `@db.Uuid`-like native type attribute, when the field has one. */
  nativeType: string | undefined;
  isId: boolean;
  /** The field's attributes as written (`@id @default(...)`). */
  attributes: string;
  line: number;
}

export interface PrismaModel {
  name: string;
  /** The table: `@@map("...")`, else the model's name. */
  table: string;
  /** `@@schema("...")` (multiSchema), else undefined: the datasource's default schema. */
  schema: string | undefined;
  fields: PrismaField[];
  /** Line of `model X {` and of its closing `}` (0-based). */
  start: number;
  end: number;
}

const modelStart = /^\s*model\s+(\w+)\s*\{\s*(\/\/.*)?$/;
const blockEnd = /^\s*\}\s*$/;
const fieldLine = /^\s*(\w+)\s+([\w.]+)(\[\])?(\?)?(.*)$/;
const mapAttr = /@map\(\s*(?:name:\s*)?"([^"]*)"/;
const blockMap = /^\s*@@map\(\s*(?:name:\s*)?"([^"]*)"/;
const blockSchema = /^\s*@@schema\(\s*"([^"]*)"/;

/** The models of a schema.prisma text. */
export function readModels(text: string): PrismaModel[] {
  const lines = text.split('\n');
  const models: PrismaModel[] = [];
  for (let i = 0; i < lines.length; i++) {
    const start = modelStart.exec(lines[i] as string);
    if (!start) continue;
    const model: PrismaModel = { name: start[1] as string, table: start[1] as string, schema: undefined, fields: [], start: i, end: i };
    for (i++; i < lines.length && !blockEnd.test(lines[i] as string); i++) {
      const line = (lines[i] as string).replace(/\/\/.*$/, '');
      if (line.trim() === '') continue;
      const mapped = blockMap.exec(line);
      if (mapped) model.table = mapped[1] as string;
      const schema = blockSchema.exec(line);
      if (schema) model.schema = schema[1] as string;
      if (line.trim().startsWith('@@')) continue;
      const field = fieldLine.exec(line);
      if (!field) continue;
      const attrs = field[5] ?? '';
      model.fields.push({
        name: field[1] as string,
        type: field[2] as string,
        list: Boolean(field[3]),
        optional: Boolean(field[4]),
        column: mapAttr.exec(attrs)?.[1] ?? (field[1] as string),
        nativeType: /@db\.\w+(\([^)]*\))?/.exec(attrs)?.[0],
        isId: /@id\b/.test(attrs),
        attributes: attrs.trim(),
        line: i,
      });
    }
    model.end = i;
    models.push(model);
  }
  return models;
}

/** Fields named in camelCase and mapped to other column names: the key field follows suit. */
export function usesMappedCamelCase(models: PrismaModel[]): boolean {
  return models.some((m) => m.fields.some((f) => f.column !== f.name && /^[a-z][A-Za-z0-9]*$/.test(f.name)));
}

export function camelCase(name: string): string {
  return name.replace(/[_\s]+([A-Za-z0-9])/g, (_, c: string) => c.toUpperCase()).replace(/^[A-Z]/, (c) => c.toLowerCase());
}

export function pascalCase(name: string): string {
  const camel = camelCase(name);
  return camel.charAt(0).toUpperCase() + camel.slice(1);
}

/** What the tenancy adds to one model: lines before the block attributes, and block attributes. */
export interface ModelEdit {
  model: string;
  fields: string[];
  attributes: string[];
}

/** A whole new model, appended at the end of the file. */
export interface NewModel {
  name: string;
  lines: string[];
}

/**
 * The text with the edits made: new field lines after a model's last field, new block
 * attributes before its closing brace, new models at the end. Lines of models not edited,
 * comments and everything else are left as they are.
 */
export function editSchema(text: string, edits: ModelEdit[], added: NewModel[]): string {
  const lines = text.split('\n');
  const models = readModels(text);
  // From the bottom up, so the line numbers of what is still to edit hold.
  const byStart = [...edits].sort((a, b) => startOf(models, b.model) - startOf(models, a.model));
  for (const edit of byStart) {
    const model = models.find((m) => m.name === edit.model);
    if (!model) throw new Error(`no model ${edit.model} in schema.prisma`);
    lines.splice(model.end, 0, ...edit.attributes.map((a) => `  ${a}`));
    const lastField = model.fields.at(-1)?.line ?? model.start;
    lines.splice(lastField + 1, 0, ...edit.fields.map((f) => `  ${f}`));
  }
  let result = lines.join('\n');
  for (const model of added) {
    result = `${result.replace(/\s*$/, '')}\n\nmodel ${model.name} {\n${model.lines.map((l) => (l ? `  ${l}` : '')).join('\n')}\n}\n`;
  }
  return result;
}

function startOf(models: PrismaModel[], name: string): number {
  return models.find((m) => m.name === name)?.start ?? -1;
}

/**
 * `formatted` is the whole edited text after Prisma's formatter; `edited` the same before it.
 * Only the named models take their formatted layout: every other line stays as the team
 * wrote it, even where the formatter would align it otherwise.
 */
export function formatTouched(edited: string, formatted: string, touched: string[]): string {
  const before = readModels(edited);
  const after = readModels(formatted);
  const formattedLines = formatted.split('\n');
  const lines = edited.split('\n');
  const blocks = before
    .filter((m) => touched.includes(m.name))
    .map((m) => {
      const f = after.find((x) => x.name === m.name);
      if (!f) throw new Error(`the formatter lost model ${m.name}`);
      return { start: m.start, end: m.end, lines: formattedLines.slice(f.start, f.end + 1) };
    })
    .sort((a, b) => b.start - a.start);
  for (const b of blocks) lines.splice(b.start, b.end - b.start + 1, ...b.lines);
  return lines.join('\n');
}
