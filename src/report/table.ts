import { columnGroups, type ColumnGroup, type PaperRow, type SummaryColumn } from '../recipe/grid.ts';
import type { GridEntry } from '../recipe/grid.ts';
import { seedOf, type ResolvedRecipe } from '../recipe/recipe.ts';
import { getFigurePath } from '../core/json.ts';
import { estimate, excludesZero, pairedDifference, type Estimate, type Interval } from './stats.ts';
import { probeComparison, stageSummaryLines, summarizeStages, type StageCell, type StageSummary } from './stages.ts';

/** One entry of the paper-style table: our figure (the test accuracy), over the recipe's seeds, beside the paper's. */
export interface TableCell {
  /** The entry's id: the cell's id, and the values of the figure axes where the grid has them. */
  readonly id: string;
  /** The cell whose figure the entry shows, where that differs from `id` (a grid with figure axes). */
  readonly cell?: string;
  /** The figure shown, where it is not the test accuracy: its path in the cell's metrics.json. */
  readonly figure?: string;
  readonly row: string;
  readonly column: string;
  /**
   * The figure (test accuracy) in % — as written where the grid's figure is not a share —: the mean
   * over the seeds, or null unless every seed finished.
   */
  readonly ours: number | null;
  /** The sample standard deviation over the seeds (%); null with one seed, or unless every seed finished. */
  readonly ours_std: number | null;
  /** Each seed's figure (test accuracy, %), in seed order (seed k is the cell's seed + k); null for a seed that did not finish. */
  readonly ours_runs: readonly (number | null)[];
  /** The 95 % Student-t interval of the mean, [low, high] (%); null with one seed, or unless every seed finished. */
  readonly ci95: Interval | null;
  /**
   * With a baseline row (`grid.baseline`): the mean over the seeds of this cell's accuracy minus the
   * baseline row's in the same column and seed (percentage points); null in the baseline row itself,
   * and unless both cells finished every seed.
   */
  readonly diff?: number | null;
  /** The 95 % Student-t interval of that paired difference; null with one seed, and where diff is null. */
  readonly diff_ci95?: Interval | null;
  readonly paper: number | null;
  readonly status: 'done' | 'failed' | 'pending';
  readonly error?: string;
  /**
   * Whether each stage did its job: the mean over the seeds of each `health` figure (each seed's own
   * are in its metrics.json, see CellMetrics); only for finished cells; absent for cells of older runs.
   */
  readonly health?: Readonly<Record<string, number>>;
}

/** What the table reads of a finished seed of a cell: its metrics.json (accuracy in [0, 1], health, analysis…). */
export type CellFigures = { readonly accuracy: number; readonly health?: Readonly<Record<string, number>> } & object;

/** How one seed of a cell ended: its figures, or its error; null: it has not run. */
export type SeedResult = CellFigures | { readonly error: string } | null;

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
  /** How many seeds each cell ran: seed k is the cell's seed + k. */
  readonly seeds: number;
  readonly backend: string;
  readonly metric: string;
  /** The row every other row's paired differences (`diff`, `diff_ci95`) are taken against; absent without grid.baseline. */
  readonly baseline?: { readonly row: string };
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
  /** What the stages did over the finished cells (their health figures); absent where no cell reports any. */
  readonly stages?: StageSummary;
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

/** What an entry's seeds say, unrounded: each seed's figure (%, for a share), their estimate and the paired difference to the baseline row. */
export interface CellEstimate {
  readonly status: TableCell['status'];
  readonly error?: string;
  /** Each seed's figure (in % for a share), null where the seed did not finish. */
  readonly runs: readonly (number | null)[];
  /** Over every seed; null unless every seed finished. */
  readonly accuracy: Estimate | null;
  /** This entry minus the baseline row's entry of the same column, seed by seed; null in the baseline row, without one, or unless both finished. */
  readonly diff: Estimate | null;
  /** The mean over the seeds of each health figure, for a finished cell that reports them. */
  readonly health?: Record<string, number>;
}

/** A cell's result of each of the recipe's seeds, in seed order (null: none yet). */
function seedsOf(recipe: ResolvedRecipe, results: ReadonlyMap<string, readonly SeedResult[]>, cell: string): SeedResult[] {
  return Array.from({ length: recipe.seeds }, (_, k) => results.get(cell)?.[k] ?? null);
}

/** Each table entry's estimate over its seeds (results: per cell id, one result per seed in seed order), by entry id. */
export function estimateEntries(recipe: ResolvedRecipe, results: ReadonlyMap<string, readonly SeedResult[]>): Map<string, CellEstimate> {
  return estimateOver(recipe, results, recipe.grid.entries, recipe.grid.percent);
}

/** Each cell's test accuracy over its seeds (what a tracker records of the cell), by cell id. */
export function estimateCells(recipe: ResolvedRecipe, results: ReadonlyMap<string, readonly SeedResult[]>): Map<string, CellEstimate> {
  const entries: GridEntry[] = recipe.cells.map((c) => ({ id: c.id, cell: c.id, row: c.row, column: c.column, figure: 'accuracy' }));
  return estimateOver(recipe, results, entries, true);
}

function estimateOver(
  recipe: ResolvedRecipe,
  results: ReadonlyMap<string, readonly SeedResult[]>,
  entries: readonly GridEntry[],
  percent: boolean,
): Map<string, CellEstimate> {
  const own = new Map<string, CellEstimate>();
  for (const e of entries) {
    const seeds = seedsOf(recipe, results, e.cell);
    // A finished seed whose figure cannot be shown fails the entry with the reason, never a number.
    const values = seeds.map((r) => (r && !('error' in r) ? figureValue(r, e.figure, percent) : null));
    const runs = values.map((v) => (typeof v === 'number' ? v : null));
    const failedAt = seeds.findIndex((r) => r !== null && 'error' in r);
    const badAt = values.findIndex((v) => typeof v === 'string');
    const error = failedAt >= 0 ? (seeds[failedAt] as { error: string }).error : badAt >= 0 ? (values[badAt] as string) : null;
    const at = failedAt >= 0 ? failedAt : badAt;
    const done = runs.every((v) => v !== null);
    const status: TableCell['status'] = error !== null ? 'failed' : done ? 'done' : 'pending';
    const health = done ? meanHealth(seeds.map((r) => (r as CellFigures).health)) : undefined;
    own.set(e.id, {
      status,
      ...(error !== null ? { error: recipe.seeds > 1 ? `seed ${at}: ${error}` : error } : {}),
      runs,
      // A share in % cannot leave [0, 100], nor a difference of two [−100, 100].
      accuracy: done ? estimate(runs as number[], percent ? [0, 100] : undefined) : null,
      diff: null,
      ...(health ? { health } : {}),
    });
  }
  if (!recipe.baseline) return own;
  const baselineRow = recipe.baseline.row;
  const out = new Map<string, CellEstimate>();
  for (const e of entries) {
    const mine = own.get(e.id)!;
    const baseEntry = entries.find((x) => x.row === baselineRow && x.column === e.column);
    const base = baseEntry ? own.get(baseEntry.id)! : null;
    const paired = e.row !== baselineRow && mine.accuracy && base?.accuracy;
    out.set(e.id, { ...mine, diff: paired ? pairedDifference(mine.runs as number[], base.runs as number[], percent ? [-100, 100] : undefined) : null });
  }
  return out;
}

/** Each figure's mean over the seeds that report it; undefined when none reports any (older runs). */
function meanHealth(seeds: readonly (Readonly<Record<string, number>> | undefined)[]): Record<string, number> | undefined {
  const reported = seeds.filter((h): h is Readonly<Record<string, number>> => h !== undefined);
  if (reported.length === 0) return undefined;
  const keys = [...new Set(reported.flatMap((h) => Object.keys(h)))];
  return Object.fromEntries(
    keys.map((k) => {
      const values = reported.filter((h) => k in h).map((h) => h[k]!);
      return [k, values.reduce((a, b) => a + b, 0) / values.length];
    }),
  );
}

export function buildTable(
  recipe: ResolvedRecipe,
  results: ReadonlyMap<string, readonly SeedResult[]>,
  info: { backend: string; notes: readonly string[] },
): Table {
  const { grid } = recipe;
  const estimates = estimateEntries(recipe, results);
  const roundInterval = (i: Interval | null | undefined): Interval | null => (i ? [round2(i[0]), round2(i[1])] : null);
  const cells: TableCell[] = grid.entries.map((c) => {
    const e = estimates.get(c.id)!;
    const paper = recipe.reference?.values[c.row]?.[c.column] ?? null;
    return {
      id: c.id,
      ...(c.cell !== c.id ? { cell: c.cell } : {}),
      ...(c.figure !== 'accuracy' ? { figure: c.figure } : {}),
      row: grid.rows[c.row]?.labels.join(' ') || recipe.name,
      column: grid.columns[c.column]?.labels.join(' ') || 'accuracy',
      ours: e.accuracy ? round2(e.accuracy.mean) : null,
      ours_std: e.accuracy?.std != null ? round2(e.accuracy.std) : null,
      ours_runs: e.runs.map((v) => (v === null ? null : round2(v))),
      ci95: roundInterval(e.accuracy?.ci95),
      ...(recipe.baseline ? { diff: e.diff ? round2(e.diff.mean) : null, diff_ci95: roundInterval(e.diff?.ci95) } : {}),
      paper,
      status: e.status,
      ...(e.error !== undefined ? { error: e.error } : {}),
      ...(e.health ? { health: e.health } : {}),
    };
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
  // Each finished cell once (a grid with figure axes shows a cell in several entries).
  const finished = new Map<string, StageCell>();
  for (const c of grid.entries) {
    const e = estimates.get(c.id)!;
    if (e.status !== 'done' || !e.health || finished.has(c.cell)) continue;
    const seeds = seedsOf(recipe, results, c.cell).map((r) => (r && !('error' in r) ? r : null));
    finished.set(c.cell, { health: e.health, probe: probeComparison(seeds) });
  }
  const stages = summarizeStages([...finished.values()]);
  return {
    recipe: recipe.name,
    title: recipe.title,
    scale: recipe.scale,
    seed: recipe.seed,
    seeds: recipe.seeds,
    backend: info.backend,
    metric: recipe.reference?.metric ?? (grid.metric === 'accuracy' ? 'accuracy (%)' : `${grid.metric}${grid.percent ? ' (%)' : ''}`),
    ...(recipe.baseline ? { baseline: { row: recipe.baseline.label } } : {}),
    // A finished cell whose figure cannot be shown says why, above the table.
    notes: [...info.notes, ...figureErrors(cells, results)],
    rowTitle: recipe.grid.rowAxes.map((a) => a.title ?? a.name).join(' / ') || 'Run',
    columnHeaders: depth ? columnHeaders : [['accuracy']],
    rows,
    cells,
    ...(summary ? { summary } : {}),
    ...(paperOnly.length ? { paperOnly } : {}),
    ...(stages ? { stages } : {}),
  };
}

/** The entries whose figure cannot be shown although no seed of their cell failed, and why. */
function figureErrors(cells: readonly TableCell[], results: ReadonlyMap<string, readonly SeedResult[]>): string[] {
  const seedFailed = (c: TableCell) => (results.get(c.cell ?? c.id) ?? []).some((r) => r !== null && 'error' in r);
  return cells.filter((c) => c.status === 'failed' && !seedFailed(c)).map((c) => `${c.id}: ${c.error}`);
}

/**
 * A seed's figure as the table takes it (a share in %), or why it cannot be shown: a figure that
 * is missing, not a number, or a "share" outside [0, 1] is an error in the entry, never a
 * plausible wrong number.
 */
function figureValue(metrics: object, figure: string, percent: boolean): number | string {
  const v = getFigurePath(metrics, figure);
  if (v === undefined) return `the cell's metrics.json has no figure '${figure}'`;
  if (typeof v !== 'number') return `'${figure}' in the cell's metrics.json is not a number (${JSON.stringify(v)?.slice(0, 60)})`;
  if (!Number.isFinite(v)) return `'${figure}' is ${v}`;
  if (percent && (v < 0 || v > 1)) return `'${figure}' is ${v}, not a share in [0, 1]; set grid.percent: false to show the figure as written`;
  return percent ? v * 100 : v;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

const fmt = (x: number | null) => (x === null ? '—' : x.toFixed(2));
const signed = (x: number) => `${x > 0 ? '+' : ''}${x.toFixed(2)}`;

/** An entry: "ours (paper)", with one seed as before seeds existed; over several seeds "mean ± std (paper)". */
function cellText(c: TableCell | undefined): string {
  if (!c) return '';
  if (c.status === 'failed') return `failed (${fmt(c.paper)})`;
  // Tables of versions before seeds (read back by compare) have no ours_std.
  return `${fmt(c.ours)}${c.ours_std != null ? ` ± ${fmt(c.ours_std)}` : ''} (${fmt(c.paper)})`;
}

/** A paired difference as printed: "+1.23 [0.40, 2.06]*" (* the interval excludes 0), "baseline" in the baseline row. */
function diffText(c: TableCell | undefined, baseline: string): string {
  if (!c) return '';
  if (c.row === baseline) return 'baseline';
  if (c.diff === undefined || c.diff === null) return '—';
  const ci = c.diff_ci95 ?? null;
  return `${signed(c.diff)}${ci ? ` [${fmt(ci[0])}, ${fmt(ci[1])}]` : ''}${excludesZero(ci) ? '*' : ''}`;
}

/** A column as printed: its header lines and its entry in each of our rows and each paper-only row. */
interface PrintedColumn {
  readonly headers: readonly string[];
  entry(row: number): string;
  paperEntry(row: PaperRow): string;
  /** The row's paired difference to the baseline row (empty for summary columns). */
  diffEntry(row: number): string;
}

/** The columns in printed order: each group's grid columns, then its summary columns. */
function printedColumns(t: Table): PrintedColumn[] {
  const ncol = t.columnHeaders[0]!.length;
  const grid = (j: number): PrintedColumn => ({
    headers: t.columnHeaders.map((h) => h[j] ?? ''),
    entry: (i) => cellText(t.cells[i * ncol + j]),
    paperEntry: (p) => `— (${fmt(p.values[j] ?? null)})`,
    diffEntry: (i) => diffText(t.cells[i * ncol + j], t.baseline?.row ?? ''),
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
      diffEntry: () => '',
    })),
  ]);
}

const PAPER_ONLY = 'Paper only (methods not run here):';

/** The seeds of a table: "seed 2024", or "seeds 2024…2026" (seed k is seed + k). */
function seedsText(t: Table): string {
  return t.seeds > 1 ? `seeds ${t.seed}…${seedOf(t.seed, t.seeds - 1)}` : `seed ${t.seed}`;
}

/** What an entry is: "ours (paper)", or over several seeds their mean ± sample std. */
function entriesText(t: Table): string {
  return t.seeds > 1 ? `mean ± std over ${t.seeds} seeds (paper), ${t.metric}; their 95 % t-intervals are in table.json` : `ours (paper), ${t.metric}`;
}

/** The heading of the paired differences' block. */
function diffHeading(t: Table): string {
  const over =
    t.seeds > 1
      ? `mean over ${t.seeds} seeds [95 % t-interval]; * the interval excludes 0`
      : 'one seed, so no interval: run more seeds (--seeds N) to tell a difference from noise';
  return `Paired difference to ${t.baseline!.row} (same column, same seed; percentage points), ${over}:`;
}

/** Markdown laid out like the paper's table; each entry is "ours (paper)", then the paired differences to the baseline row. */
export function tableMarkdown(t: Table): string {
  const columns = printedColumns(t);
  const lines: string[] = [`### ${t.title}`, '', `Scale \`${t.scale}\`, ${seedsText(t)}, backend \`${t.backend}\`. Each entry: ${entriesText(t)}.`];
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
  if (t.baseline) {
    lines.push('', diffHeading(t), '', ...header);
    t.rows.forEach((row, i) => lines.push(`| ${row} | ${columns.map((c) => c.diffEntry(i)).join(' | ')} |`));
  }
  if (t.stages) {
    const [heading, ...items] = stageSummaryLines(t.stages);
    lines.push('', heading!, '', ...items.map((l) => `- ${l.trim()}`));
  }
  return `${lines.join('\n')}\n`;
}

function collapseRepeats(h: readonly string[]): string[] {
  return h.map((v, i) => (i > 0 && h[i - 1] === v ? '' : v));
}

/** Plain-text table for the terminal, with aligned columns; the paired differences to the baseline row below it. */
export function tableText(t: Table): string {
  const columns = printedColumns(t);
  const levels = t.columnHeaders.length;
  const body = t.rows.map((row, i) => [row, ...columns.map((c) => c.entry(i))]);
  const paper = (t.paperOnly ?? []).map((p) => [p.label, ...columns.map((c) => c.paperEntry(p))]);
  const diffs = t.baseline ? t.rows.map((row, i) => [row, ...columns.map((c) => c.diffEntry(i))]) : [];
  const headers = Array.from({ length: levels }, (_, l) => [l === levels - 1 ? t.rowTitle : '', ...collapseRepeats(columns.map((c) => c.headers[l] ?? ''))]);
  const all = [...headers, ...body, ...paper, ...diffs];
  const widths = Array.from({ length: columns.length + 1 }, (_, j) => Math.max(...all.map((r) => (r[j] ?? '').length)));
  const line = (r: string[]) => r.map((v, j) => (j === 0 ? v.padEnd(widths[j]!) : v.padStart(widths[j]!))).join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const out = [t.title, `scale ${t.scale} · ${seedsText(t)} · backend ${t.backend} · entries: ${entriesText(t)}`, ...t.notes.map((n) => `note: ${n}`), ''];
  for (const h of headers) out.push(line(h));
  out.push(rule);
  for (const r of body) out.push(line(r));
  if (paper.length) {
    out.push(rule, PAPER_ONLY);
    for (const r of paper) out.push(line(r));
  }
  if (diffs.length) {
    out.push('', diffHeading(t));
    for (const h of headers) out.push(line(h));
    out.push(rule);
    for (const r of diffs) out.push(line(r));
  }
  if (t.stages) out.push('', ...stageSummaryLines(t.stages));
  return `${out.join('\n')}\n`;
}
