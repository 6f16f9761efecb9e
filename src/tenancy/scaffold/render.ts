/**
 * A scaffolded unit as plan text: a header comment (what it does, why it is safe on a
 * live database), directives, the body, then precheck and verify sections.
 */

export interface Section {
  name: string;
  sql: string;
  /** A precheck that walks its table in ranges: the `tenantify:ranges` value (`<table> key=<column> size=N`). */
  ranges?: string;
}

/** A section as plan text: its marker, its ranges line (a precheck in ranges), its query. */
export function renderSection(kind: 'precheck' | 'verify', s: Section): string {
  return [`-- tenantify:${kind} ${s.name}`, ...(s.ranges ? [`-- tenantify:ranges ${s.ranges}`] : []), `${s.sql.trimEnd()};`].join('\n');
}

export interface UnitText {
  /** Comment lines, without `-- `. */
  about: string[];
  /** Directive lines, without `-- tenantify:`. */
  directives: string[];
  /** Statements (each may span lines), without the trailing semicolon. */
  body: string[];
  prechecks?: Section[];
  verifies?: Section[];
}

export function renderUnit(unit: UnitText): string {
  const out: string[] = [];
  for (const line of unit.about) out.push(line === '' ? '--' : `-- ${line}`);
  for (const d of unit.directives) out.push(`-- tenantify:${d}`);
  out.push('');
  for (const statement of unit.body) {
    out.push(`${statement.trimEnd()};`);
    out.push('');
  }
  for (const [kind, sections] of [
    ['precheck', unit.prechecks ?? []],
    ['verify', unit.verifies ?? []],
  ] as const) {
    for (const s of sections) {
      out.push(renderSection(kind, s));
      out.push('');
    }
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/** Wraps words into comment lines of at most `width` characters. */
export function wrap(text: string, width = 88): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}
