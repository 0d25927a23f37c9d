import type { ResolvedRecipe } from '../recipe/recipe.ts';

/** One cell of the paper-style table: our accuracy beside the paper's. */
export interface TableCell {
  readonly id: string;
  readonly row: string;
  readonly column: string;
  /** Test accuracy in %, or null when the cell has not finished. */
  readonly ours: number | null;
  readonly paper: number | null;
  readonly status: 'done' | 'failed' | 'pending';
  readonly error?: string;
}

export interface Table {
  readonly recipe: string;
  readonly title: string;
  readonly scale: string;
  readonly seed: number;
  readonly backend: string;
  readonly metric: string;
  /** Notes shown above the table: stand-in data, stages that did not run. */
  readonly notes: readonly string[];
  readonly rowTitle: string;
  /** Column header lines, outermost axis first (e.g. dataset, then label fraction). */
  readonly columnHeaders: readonly (readonly string[])[];
  readonly rows: readonly string[];
  readonly cells: readonly TableCell[];
}

export function buildTable(
  recipe: ResolvedRecipe,
  results: ReadonlyMap<string, { accuracy: number } | { error: string }>,
  info: { backend: string; notes: readonly string[] },
): Table {
  const cells: TableCell[] = recipe.cells.map((c) => {
    const r = results.get(c.id);
    const paper = recipe.reference?.values[c.row]?.[c.column] ?? null;
    const base = { id: c.id, row: c.rowPoint.labels.join(' ') || recipe.name, column: c.columnPoint.labels.join(' ') || 'accuracy', paper };
    if (!r) return { ...base, ours: null, status: 'pending' };
    if ('error' in r) return { ...base, ours: null, status: 'failed', error: r.error };
    return { ...base, ours: round2(r.accuracy * 100), status: 'done' };
  });
  const depth = recipe.grid.columnAxes.length;
  const columnHeaders = Array.from({ length: depth }, (_, level) => recipe.grid.columns.map((p) => p.labels[level] ?? ''));
  return {
    recipe: recipe.name,
    title: recipe.title,
    scale: recipe.scale,
    seed: recipe.seed,
    backend: info.backend,
    metric: recipe.reference?.metric ?? 'accuracy (%)',
    notes: info.notes,
    rowTitle: recipe.grid.rowAxes.map((a) => a.title ?? a.name).join(' / ') || 'Run',
    columnHeaders: depth ? columnHeaders : [['accuracy']],
    rows: recipe.grid.rows.length ? recipe.grid.rows.map((r) => r.labels.join(' ')) : [recipe.name],
    cells,
  };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

const fmt = (x: number | null) => (x === null ? '—' : x.toFixed(2));

function cellText(c: TableCell | undefined): string {
  if (!c) return '';
  if (c.status === 'failed') return `failed (${fmt(c.paper)})`;
  return `${fmt(c.ours)} (${fmt(c.paper)})`;
}

/** Markdown laid out like the paper's table; each entry is "ours (paper)". */
export function tableMarkdown(t: Table): string {
  const ncol = t.columnHeaders[0]!.length;
  const lines: string[] = [`### ${t.title}`, '', `Scale \`${t.scale}\`, seed ${t.seed}, backend \`${t.backend}\`. Each entry: ours (paper), ${t.metric}.`];
  for (const n of t.notes) lines.push(`> ${n}`);
  lines.push('');
  // One header row: the column's labels joined (RAF-DB 5%), so the table stays valid Markdown.
  const headers = Array.from({ length: ncol }, (_, j) => t.columnHeaders.map((h) => h[j] ?? '').join(' ').trim());
  lines.push(`| ${t.rowTitle} | ${headers.join(' | ')} |`);
  lines.push(`|---|${Array(ncol).fill('---:').join('|')}|`);
  t.rows.forEach((row, i) => {
    const entries = Array.from({ length: ncol }, (_, j) => cellText(t.cells[i * ncol + j]));
    lines.push(`| ${row} | ${entries.join(' | ')} |`);
  });
  return `${lines.join('\n')}\n`;
}

function collapseRepeats(h: readonly string[]): string[] {
  return h.map((v, i) => (i > 0 && h[i - 1] === v ? '' : v));
}

/** Plain-text table for the terminal, with aligned columns. */
export function tableText(t: Table): string {
  const ncol = t.columnHeaders[0]!.length;
  const body = t.rows.map((row, i) => [row, ...Array.from({ length: ncol }, (_, j) => cellText(t.cells[i * ncol + j]))]);
  const headers = t.columnHeaders.map((h, i) => [i === t.columnHeaders.length - 1 ? t.rowTitle : '', ...collapseRepeats(h)]);
  const all = [...headers, ...body];
  const widths = Array.from({ length: ncol + 1 }, (_, j) => Math.max(...all.map((r) => (r[j] ?? '').length)));
  const line = (r: string[]) => r.map((v, j) => (j === 0 ? v.padEnd(widths[j]!) : v.padStart(widths[j]!))).join('  ');
  const out = [t.title, `scale ${t.scale} · seed ${t.seed} · backend ${t.backend} · entries: ours (paper), ${t.metric}`, ...t.notes.map((n) => `note: ${n}`), ''];
  for (const h of headers) out.push(line(h));
  out.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of body) out.push(line(r));
  return `${out.join('\n')}\n`;
}
