import { columnGroups, type ColumnGroup, type PaperRow, type SummaryColumn } from '../recipe/grid.ts';
import type { ResolvedRecipe } from '../recipe/recipe.ts';
import { getFigurePath } from '../core/json.ts';

/** One entry of the paper-style table: our figure (accuracy) beside the paper's. */
export interface TableCell {
  /** The entry's id: the cell's id, and the values of the figure axes where the grid has them. */
  readonly id: string;
  /** The cell whose figure the entry shows, where that differs from `id` (a grid with figure axes). */
  readonly cell?: string;
  /** The figure shown, where it is not the test accuracy: its path in the cell's metrics.json. */
  readonly figure?: string;
  readonly row: string;
  readonly column: string;
  /** The figure (test accuracy) in % — as written where the grid's figure is not a share — or null when the cell has not finished. */
  readonly ours: number | null;
  readonly paper: number | null;
  readonly status: 'done' | 'failed' | 'pending';
  readonly error?: string;
  /** Whether each stage did its job (the cell's `health`, see CellMetrics); absent for cells of older runs. */
  readonly health?: Readonly<Record<string, number>>;
}

export interface SummaryCell {
  readonly ours: number | null;
  readonly paper: number | null;
}

export interface TableSummary {
  readonly columns: readonly SummaryColumn[];
  readonly groups: readonly ColumnGroup[];
  /** cells[row][group][summary column]. */
  readonly cells: readonly (readonly (readonly SummaryCell[])[])[];
}

export interface Table {
  readonly recipe: string;
  readonly title: string;
  readonly scale: string;
  readonly seed: number;
  readonly backend: string;
  readonly metric: string;
  /** Notes shown above the table: stand-in data, what the loaders left out. */
  readonly notes: readonly string[];
  readonly rowTitle: string;
  /** Column header lines, outermost axis first (e.g. dataset, then label fraction). */
  readonly columnHeaders: readonly (readonly string[])[];
  readonly rows: readonly string[];
  readonly cells: readonly TableCell[];
  /** Computed columns, shown after each column group; absent when the recipe declares none. */
  readonly summary?: TableSummary;
  /** The paper's rows for methods not run here, shown under ours. */
  readonly paperOnly?: readonly PaperRow[];
}

/** A summary of one group's values in column order; null unless the values it needs are all there. */
export function summarize(of: SummaryColumn['of'], values: readonly (number | null)[]): number | null {
  if (values.length === 0) return null;
  switch (of) {
    case 'mean': {
      if (values.some((v) => v === null)) return null;
      return round2((values as number[]).reduce((a, b) => a + b, 0) / values.length);
    }
    case 'first-minus-last': {
      const first = values[0]!;
      const last = values[values.length - 1]!;
      return first === null || last === null ? null : round2(first - last);
    }
  }
}

/** What the table reads of a finished cell: its metrics.json (accuracy, health, analysis…). */
export type CellFigures = { readonly accuracy: number; readonly health?: Readonly<Record<string, number>> } & object;

export function buildTable(
  recipe: ResolvedRecipe,
  results: ReadonlyMap<string, CellFigures | { error: string }>,
  info: { backend: string; notes: readonly string[] },
): Table {
  const { grid } = recipe;
  const cells: TableCell[] = grid.entries.map((e) => {
    const r = results.get(e.cell);
    const paper = recipe.reference?.values[e.row]?.[e.column] ?? null;
    const base = {
      id: e.id,
      ...(e.cell !== e.id ? { cell: e.cell } : {}),
      ...(e.figure !== 'accuracy' ? { figure: e.figure } : {}),
      row: grid.rows[e.row]!.labels.join(' ') || recipe.name,
      column: grid.columns[e.column]!.labels.join(' ') || 'accuracy',
      paper,
    };
    if (!r) return { ...base, ours: null, status: 'pending' };
    if ('error' in r) return { ...base, ours: null, status: 'failed', error: r.error };
    const shown = figureOf(r, e.figure, grid.percent);
    if (typeof shown === 'string') return { ...base, ours: null, status: 'failed', error: shown };
    return { ...base, ours: shown, status: 'done', ...(r.health ? { health: r.health } : {}) };
  });
  const depth = recipe.grid.columnAxes.length;
  const columnHeaders = Array.from({ length: depth }, (_, level) => recipe.grid.columns.map((p) => p.labels[level] ?? ''));
  const rows = recipe.grid.rows.length ? recipe.grid.rows.map((r) => r.labels.join(' ')) : [recipe.name];
  const ncol = Math.max(1, recipe.grid.columns.length);
  const groups = columnGroups(recipe.grid);
  const summary: TableSummary | undefined =
    recipe.summary.length && depth
      ? {
          columns: recipe.summary,
          groups,
          cells: rows.map((_, i) =>
            groups.map((g, gi) =>
              recipe.summary.map((s, si) => ({
                ours: summarize(
                  s.of,
                  g.columns.map((j) => cells[i * ncol + j]!.ours),
                ),
                paper: recipe.reference?.summary?.[i]?.[gi]?.[si] ?? null,
              })),
            ),
          ),
        }
      : undefined;
  const paperOnly = recipe.reference?.others ?? [];
  return {
    recipe: recipe.name,
    title: recipe.title,
    scale: recipe.scale,
    seed: recipe.seed,
    backend: info.backend,
    metric: recipe.reference?.metric ?? (grid.metric === 'accuracy' ? 'accuracy (%)' : `${grid.metric}${grid.percent ? ' (%)' : ''}`),
    // A finished cell whose figure cannot be shown says why, above the table.
    notes: [...info.notes, ...figureErrors(cells, results)],
    rowTitle: recipe.grid.rowAxes.map((a) => a.title ?? a.name).join(' / ') || 'Run',
    columnHeaders: depth ? columnHeaders : [['accuracy']],
    rows,
    cells,
    ...(summary ? { summary } : {}),
    ...(paperOnly.length ? { paperOnly } : {}),
  };
}

/** The entries of finished cells whose figure cannot be shown, and why. */
function figureErrors(cells: readonly TableCell[], results: ReadonlyMap<string, CellFigures | { error: string }>): string[] {
  const finished = (c: TableCell) => {
    const r = results.get(c.cell ?? c.id);
    return r !== undefined && !('error' in r);
  };
  return cells.filter((c) => c.status === 'failed' && finished(c)).map((c) => `${c.id}: ${c.error}`);
}

/**
 * A cell's figure as the table shows it (a share in %, rounded to 2 decimals), or why it cannot
 * be shown: a figure that is missing, not a number, or a "share" outside [0, 1] is an error in
 * the entry, never a plausible wrong number.
 */
export function figureOf(metrics: object, figure: string, percent: boolean): number | string {
  const v = getFigurePath(metrics, figure);
  if (v === undefined) return `the cell's metrics.json has no figure '${figure}'`;
  if (typeof v !== 'number') return `'${figure}' in the cell's metrics.json is not a number (${JSON.stringify(v)?.slice(0, 60)})`;
  if (!Number.isFinite(v)) return `'${figure}' is ${v}`;
  if (percent && (v < 0 || v > 1)) return `'${figure}' is ${v}, not a share in [0, 1]; set grid.percent: false to show the figure as written`;
  return round2(percent ? v * 100 : v);
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

/** A column as printed: its header lines and its entry in each of our rows and each paper-only row. */
interface PrintedColumn {
  readonly headers: readonly string[];
  entry(row: number): string;
  paperEntry(row: PaperRow): string;
}

/** The columns in printed order: each group's grid columns, then its summary columns. */
function printedColumns(t: Table): PrintedColumn[] {
  const ncol = t.columnHeaders[0]!.length;
  const grid = (j: number): PrintedColumn => ({
    headers: t.columnHeaders.map((h) => h[j] ?? ''),
    entry: (i) => cellText(t.cells[i * ncol + j]),
    paperEntry: (p) => `— (${fmt(p.values[j] ?? null)})`,
  });
  if (!t.summary) return Array.from({ length: ncol }, (_, j) => grid(j));
  const { groups, columns, cells } = t.summary;
  return groups.flatMap((g, gi) => [
    ...g.columns.map(grid),
    ...columns.map((s, si): PrintedColumn => ({
      headers: [...g.labels, s.label],
      entry: (i) => {
        const c = cells[i]![gi]![si]!;
        return `${fmt(c.ours)} (${fmt(c.paper)})`;
      },
      paperEntry: (p) => `— (${fmt(p.summary[gi]?.[si] ?? null)})`,
    })),
  ]);
}

const PAPER_ONLY = 'Paper only (methods not run here):';

/** Markdown laid out like the paper's table; each entry is "ours (paper)". */
export function tableMarkdown(t: Table): string {
  const columns = printedColumns(t);
  const lines: string[] = [`### ${t.title}`, '', `Scale \`${t.scale}\`, seed ${t.seed}, backend \`${t.backend}\`. Each entry: ours (paper), ${t.metric}.`];
  for (const n of t.notes) lines.push(`> ${n}`);
  lines.push('');
  // One header row: the column's labels joined (RAF-DB 5%), so the table stays valid Markdown.
  const header = [`| ${t.rowTitle} | ${columns.map((c) => c.headers.join(' ').trim()).join(' | ')} |`, `|---|${columns.map(() => '---:').join('|')}|`];
  lines.push(...header);
  t.rows.forEach((row, i) => lines.push(`| ${row} | ${columns.map((c) => c.entry(i)).join(' | ')} |`));
  if (t.paperOnly?.length) {
    lines.push('', PAPER_ONLY, '', ...header);
    for (const p of t.paperOnly) lines.push(`| ${p.label} | ${columns.map((c) => c.paperEntry(p)).join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}

function collapseRepeats(h: readonly string[]): string[] {
  return h.map((v, i) => (i > 0 && h[i - 1] === v ? '' : v));
}

/** Plain-text table for the terminal, with aligned columns. */
export function tableText(t: Table): string {
  const columns = printedColumns(t);
  const levels = t.columnHeaders.length;
  const body = t.rows.map((row, i) => [row, ...columns.map((c) => c.entry(i))]);
  const paper = (t.paperOnly ?? []).map((p) => [p.label, ...columns.map((c) => c.paperEntry(p))]);
  const headers = Array.from({ length: levels }, (_, l) => [l === levels - 1 ? t.rowTitle : '', ...collapseRepeats(columns.map((c) => c.headers[l] ?? ''))]);
  const all = [...headers, ...body, ...paper];
  const widths = Array.from({ length: columns.length + 1 }, (_, j) => Math.max(...all.map((r) => (r[j] ?? '').length)));
  const line = (r: string[]) => r.map((v, j) => (j === 0 ? v.padEnd(widths[j]!) : v.padStart(widths[j]!))).join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const out = [
    t.title,
    `scale ${t.scale} · seed ${t.seed} · backend ${t.backend} · entries: ours (paper), ${t.metric}`,
    ...t.notes.map((n) => `note: ${n}`),
    '',
  ];
  for (const h of headers) out.push(line(h));
  out.push(rule);
  for (const r of body) out.push(line(r));
  if (paper.length) {
    out.push(rule, PAPER_ONLY);
    for (const r of paper) out.push(line(r));
  }
  return `${out.join('\n')}\n`;
}
