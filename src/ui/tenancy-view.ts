/** `tenancy analyze`: the table, the contract's JSON, and the graph as mermaid or dot. */
import Table from 'cli-table3';
import type { Hop, TableAnalysis, TableName, TenancyAnalysis } from '../tenancy/types.js';
import { someNames, splitTableName, writtenName } from '../tenancy/sql-text.js';
import type { Output } from './output.js';

/** `public.tasks` → `tasks` when every table read is in public; else the full name. */
export function shortNames(analysis: TenancyAnalysis): (name: TableName) => string {
  const allPublic = analysis.tables.every((t) => splitTableName(t.table).schema === 'public');
  return (name) => writtenName(name, allPublic);
}

/** `tasks → projects → accounts`. */
export function pathText(hops: Hop[], short: (name: TableName) => string): string {
  const [first] = hops;
  if (!first) return '';
  return [short(first.table), ...hops.map((h) => short(h.references))].join(' → ');
}

const hopJson = (h: Hop) => ({ table: h.table, columns: h.columns, references: h.references, nullable: h.nullable });

export function analyzeJson(analysis: TenancyAnalysis) {
  return {
    owner: analysis.owner,
    tenants: analysis.tenants,
    key: analysis.key,
    tables: analysis.tables.map((t) =>
      t.role === 'global' || t.role === 'ignore'
        ? { table: t.table, role: t.role, referencedBy: t.referencedBy }
        : {
            table: t.table,
            role: t.role,
            rows: t.estimatedRows,
            via: t.via.map(hopJson),
            // The other paths the text table shows as `or ...`: tried in order when the first yields no owner.
            ...(t.role === 'tenant' ? { fallbacks: t.fallbacks.map((path) => path.map(hopJson)) } : {}),
            unresolved: t.role === 'owner' ? 0 : (t.unresolved ?? null),
            consistency: t.consistency.map((e) => ({ columns: e.columns, references: e.references, conflicts: e.conflicts ?? null })),
            ...(t.ambiguous
              ? {
                  ambiguous: t.ambiguous.map((c) => ({
                    columns: c.columns,
                    references: c.references,
                    chosen: c.chosen,
                    conflicts: c.conflicts ?? null,
                  })),
                }
              : {}),
            ...(t.partitions ? { partitions: t.partitions } : {}),
          },
    ),
    views: (analysis.views ?? []).map((v) => ({
      view: v.view,
      kind: v.kind,
      owner: v.owner,
      securityInvoker: v.securityInvoker,
      ownerBypassesRls: v.ownerBypassesRls,
      tenantTables: v.tenantTables,
    })),
    hints: analysis.hints.map((h) => ({ table: h.table, ...(h.column ? { column: h.column } : {}), hint: h.hint })),
  };
}

export function renderAnalyzeTable(out: Output, analysis: TenancyAnalysis, data: boolean): void {
  out.line(analyzeTableText(analysis, data, out.style));
  const views = analysis.views ?? [];
  if (views.length > 0) {
    const short = shortNames(analysis);
    out.line('');
    out.line(out.style.bold('Views over tenant tables'));
    for (const v of views) {
      const runs =
        v.kind === 'materialized'
          ? 'a copy every reader sees whole (row level security does not apply)'
          : v.securityInvoker === true
            ? 'runs as the invoker'
            : `runs as its owner ${v.owner}${v.ownerBypassesRls ? ', who bypasses row level security' : ''}`;
      out.line(
        `  ${short(v.view)}${v.kind === 'materialized' ? ' (materialized)' : ''}: reads ${v.tenantTables.map(short).join(', ')}; ${runs}`,
      );
    }
  }
  if (analysis.hints.length > 0) {
    out.line('');
    out.line(out.style.bold('Hints'));
    const short = shortNames(analysis);
    for (const hint of analysis.hints) out.line(`  ${short(hint.table)}${hint.column ? `.${hint.column}` : ''}: ${hint.hint}`);
  }
}

/** The table alone, as text (also what the fixture READMEs show). */
export function analyzeTableText(analysis: TenancyAnalysis, data: boolean, style?: Output['style']): string {
  const short = shortNames(analysis);
  const bold = (s: string): string => (style ? style.bold(s) : s);
  const dim = (s: string): string => (style ? style.dim(s) : s);
  const red = (s: string): string => (style ? style.red(s) : s);
  const table = new Table({
    head: ['table', 'role', 'path', 'rows', 'unresolved', 'conflicts'].map(bold),
    style: { head: [], border: [], compact: true },
    chars: style ? {} : asciiChars,
  });
  for (const t of analysis.tables) {
    const ambiguous = t.ambiguous
      ? [
          dim(
            `ambiguous: ${t.ambiguous.map((c) => `${c.columns.join(',')}${c.conflicts === undefined ? '' : ` (${c.conflicts} conflicting)`}${c.chosen ? ' chosen' : ''}`).join(', ')}`,
          ),
        ]
      : [];
    const partitions = t.partitions && t.partitions.length > 0 ? [dim(`partitions: ${someNames(t.partitions.map(short))}`)] : [];
    const path =
      t.role === 'owner'
        ? dim('(owner)')
        : t.role === 'tenant'
          ? [pathText(t.via, short), ...t.fallbacks.map((f) => dim(`or ${pathText(f, short)}`)), ...ambiguous, ...partitions].join('\n')
          : partitions.join('\n');
    const count = (n: number | undefined): string => (!data ? dim('-') : n ? red(String(n)) : String(n ?? 0));
    const conflicts = t.consistency
      .map(
        (e) => `${e.columns.join(',')} → ${short(e.references)}: ${count(e.conflicts)}${e.policy === 'fail' ? '' : dim(` (${e.policy})`)}`,
      )
      .join('\n');
    table.push([short(t.table), roleText(t), path, String(t.estimatedRows), t.role === 'tenant' ? count(t.unresolved) : '', conflicts]);
  }
  return table.toString();
}

function roleText(t: TableAnalysis): string {
  if (t.role === 'tenant') return `tenant (${t.depth})`;
  return t.role;
}

/** Plain characters for text kept in files (READMEs), so they read the same everywhere. */
const asciiChars = {
  top: '-',
  'top-mid': '+',
  'top-left': '+',
  'top-right': '+',
  bottom: '-',
  'bottom-mid': '+',
  'bottom-left': '+',
  'bottom-right': '+',
  left: '|',
  'left-mid': '+',
  mid: '-',
  'mid-mid': '+',
  right: '|',
  'right-mid': '+',
  middle: '|',
};

export function analyzeSummary(analysis: TenancyAnalysis, data: boolean): string {
  const tenants = analysis.tables.filter((t) => t.role === 'tenant');
  const unresolved = tenants.reduce((n, t) => n + (t.unresolved ?? 0), 0);
  const conflicts = analysis.tables.reduce((n, t) => n + t.consistency.reduce((m, e) => m + (e.conflicts ?? 0), 0), 0);
  const parts = [
    `owner ${analysis.owner}`,
    `tenants ${analysis.tenants}${analysis.ownerIsTenants ? ' (the owner itself)' : analysis.tenantsExists ? '' : ' (to be created)'}`,
    `key ${analysis.key}`,
    `${tenants.length} tenant table${tenants.length === 1 ? '' : 's'}`,
  ];
  if (data) parts.push(`${unresolved} unresolved row${unresolved === 1 ? '' : 's'}`, `${conflicts} conflict${conflicts === 1 ? '' : 's'}`);
  return parts.join(', ');
}

// ---------------------------------------------------------------------------------------
// The graph: tenant tables by depth, derivation hops solid, consistency hops dashed
// ---------------------------------------------------------------------------------------

function graphTables(analysis: TenancyAnalysis): TableAnalysis[][] {
  const byDepth: TableAnalysis[][] = [];
  for (const t of analysis.tables) {
    if (t.role !== 'owner' && t.role !== 'tenant') continue;
    (byDepth[t.depth] ??= []).push(t);
  }
  return byDepth.filter(Boolean);
}

export function mermaidGraph(analysis: TenancyAnalysis): string {
  const short = shortNames(analysis);
  // A node id per table: its name's plain characters, for a reader of the source; names
  // that read alike that way ("🍕pizza🍕" and "__pizza__") also take their place in the analysis.
  const plain = (name: TableName): string => name.replace(/[^A-Za-z0-9_]/g, '_');
  const seen = new Map<string, number>();
  for (const t of analysis.tables) seen.set(plain(t.table), (seen.get(plain(t.table)) ?? 0) + 1);
  const ids = new Map(
    analysis.tables.map((t, i) => [t.table, (seen.get(plain(t.table)) ?? 0) > 1 ? `${plain(t.table)}_${i}` : plain(t.table)]),
  );
  const id = (name: TableName): string => ids.get(name) ?? plain(name);
  // Mermaid's entity codes: a quote would end the label.
  const escaped = (s: string): string => s.replace(/#/g, '#35;').replace(/"/g, '#quot;');
  const text = (s: string): string => (/^[A-Za-z0-9_ ,.]+$/.test(s) ? s : `"${escaped(s)}"`);
  const lines = ['flowchart BT'];
  for (const [depth, tables] of graphTables(analysis).entries()) {
    lines.push(`  subgraph depth${depth}["${depth === 0 ? 'owner' : `depth ${depth}`}"]`);
    for (const t of tables) lines.push(`    ${id(t.table)}["${escaped(short(t.table))}"]`);
    lines.push('  end');
  }
  for (const t of analysis.tables) {
    const first = t.via[0];
    if (first) lines.push(`  ${id(t.table)} -->|${text(first.columns.join(', '))}| ${id(first.references)}`);
    for (const e of t.consistency) lines.push(`  ${id(t.table)} -.->|${text(e.columns.join(', '))}| ${id(e.references)}`);
  }
  return lines.join('\n');
}

export function dotGraph(analysis: TenancyAnalysis): string {
  const short = shortNames(analysis);
  const q = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  const lines = ['digraph tenancy {', '  rankdir=BT;', '  node [shape=box, fontname="Helvetica"];'];
  for (const tables of graphTables(analysis)) {
    lines.push(`  { rank=same; ${tables.map((t) => `${q(short(t.table))}${t.role === 'owner' ? ' [style=bold]' : ''};`).join(' ')} }`);
  }
  for (const t of analysis.tables) {
    const first = t.via[0];
    if (first) lines.push(`  ${q(short(t.table))} -> ${q(short(first.references))} [label=${q(first.columns.join(', '))}];`);
    for (const e of t.consistency)
      lines.push(`  ${q(short(t.table))} -> ${q(short(e.references))} [label=${q(e.columns.join(', '))}, style=dashed, constraint=false];`);
  }
  lines.push('}');
  return lines.join('\n');
}
