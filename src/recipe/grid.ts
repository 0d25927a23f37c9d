import type { Diagnostic } from './diagnostics.ts';
import type { SUMMARY_KINDS } from './schema.ts';
import { getPath, isObject, joinPath, type Json, type JsonObject } from '../core/json.ts';
import { locate, type Located } from './located.ts';

export interface AxisSpec {
  name: string;
  title?: string;
  path?: string;
  by?: string;
  format?: 'plain' | 'percent';
  labels?: Record<string, string>;
  values: Json[] | Record<string, Json[]>;
}

/** One value taken on one axis. */
export interface AxisValue {
  readonly axis: string;
  readonly value: string | number | boolean | null;
  readonly label: string;
  /** Dotted recipe path → value this choice sets, and where the choice was written. */
  readonly set: ReadonlyArray<{ path: string; value: Json; from: string }>;
}

/** A point on the rows (or columns) of a table: one value per axis of that side. */
export interface GridPoint {
  readonly values: readonly AxisValue[];
  readonly id: string;
  readonly labels: readonly string[];
}

export interface Cell {
  /** Stable readable id, row axes then column axes: `kappa=iou/dataset=rafdb/labels=0.05`. */
  readonly id: string;
  readonly row: number;
  readonly column: number;
  readonly rowPoint: GridPoint;
  readonly columnPoint: GridPoint;
}

/**
 * One entry of the table: the cell it shows and the figure of that cell's metrics it shows. Without
 * figure axes every entry is a cell of its own and shows `grid.metric` (accuracy); a figure axis
 * (named in `grid.metric` as `{axis}`) makes several entries show figures of one cell.
 */
export interface GridEntry {
  /** The entry's readable id, every axis's value: the cell's id when there are no figure axes. */
  readonly id: string;
  readonly row: number;
  readonly column: number;
  /** The id of the cell whose metrics it shows. */
  readonly cell: string;
  /** The dotted path of the figure in the cell's metrics.json (`accuracy`, `analysis.params-flops.params_m`). */
  readonly figure: string;
}

export interface Grid {
  readonly rows: readonly GridPoint[];
  readonly columns: readonly GridPoint[];
  readonly rowAxes: readonly AxisSpec[];
  readonly columnAxes: readonly AxisSpec[];
  /** The runs: one per combination of the values of every axis but the figure axes. */
  readonly cells: readonly Cell[];
  /** The table's entries, row by row (rows × columns). */
  readonly entries: readonly GridEntry[];
  /** `grid.metric` as written: a figure path, `{axis}` standing for a figure axis's value. */
  readonly metric: string;
  /** Axes named in the metric: they choose what an entry shows and set nothing. */
  readonly figureAxes: readonly string[];
  /** Whether the figure is a share in [0, 1] shown in % (`grid.percent`). */
  readonly percent: boolean;
}

/** The placeholders `{axis}` of a metric template, in order. */
export function metricPlaceholders(metric: string): string[] {
  return [...metric.matchAll(/\{([^{}]*)\}/g)].map((m) => m[1]!);
}

function formatValue(axis: AxisSpec, value: Json): string {
  const key = String(value);
  if (axis.labels && key in axis.labels) return axis.labels[key]!;
  if (axis.format === 'percent' && typeof value === 'number') return `${+(value * 100).toFixed(4)}%`;
  return key;
}

/** Expands one side's axes into points (cartesian product; `by` axes follow an earlier axis's value). */
function expandSide(
  axes: readonly AxisSpec[],
  side: 'rows' | 'columns',
  figures: ReadonlySet<string>,
  located: Located,
  diagnostics: Diagnostic[],
): GridPoint[] {
  let points: AxisValue[][] = [[]];
  axes.forEach((axis, i) => {
    const at = `grid.${side}.${i}`;
    const figure = figures.has(axis.name);
    if (figure && axis.path !== undefined) {
      diagnostics.push({
        loc: locate(located, joinPath(at, 'path')),
        path: joinPath(at, 'path'),
        message: `axis '${axis.name}' is a figure axis (grid.metric names it as {${axis.name}}): it chooses the figure an entry shows and sets nothing; remove path:`,
      });
    }
    const next: AxisValue[][] = [];
    for (const prefix of points) {
      let list: Json[] | undefined;
      let listPath = joinPath(at, 'values');
      if (Array.isArray(axis.values)) {
        if (axis.by !== undefined) {
          diagnostics.push({
            loc: locate(located, joinPath(at, 'by')),
            path: joinPath(at, 'by'),
            message: 'by: needs values written as a mapping from the other axis value to a list',
          });
          return;
        }
        list = axis.values;
      } else {
        const byValue = prefix.find((v) => v.axis === axis.by);
        if (axis.by === undefined || !byValue) {
          diagnostics.push({
            loc: locate(located, joinPath(at, axis.by === undefined ? 'values' : 'by')),
            path: joinPath(at, axis.by === undefined ? 'values' : 'by'),
            message:
              axis.by === undefined ? 'values written as a mapping need by: <an earlier axis name>' : `by: '${axis.by}' is not an earlier axis on the ${side}`,
          });
          return;
        }
        list = axis.values[String(byValue.value)];
        listPath = joinPath(listPath, String(byValue.value));
        if (!list) {
          diagnostics.push({
            loc: locate(located, joinPath(at, 'values')),
            path: joinPath(at, 'values'),
            message: `no values for ${axis.by}=${String(byValue.value)}; add a list under that key`,
          });
          return;
        }
      }
      list.forEach((entry, j) => {
        const from = joinPath(listPath, j);
        if (isObject(entry)) {
          if (figure === (entry.set !== undefined)) {
            diagnostics.push({
              loc: locate(located, figure ? joinPath(from, 'set') : from),
              path: figure ? joinPath(from, 'set') : from,
              message: figure
                ? `axis '${axis.name}' is a figure axis (grid.metric names it as {${axis.name}}): its values choose the figure and set nothing; remove set:`
                : `needs set: { path: value } (what this value changes in the recipe), or name the axis in grid.metric as {${axis.name}} to make it choose the figure shown`,
            });
            return;
          }
          const set = Object.entries((entry.set ?? {}) as JsonObject).map(([p, v]) => ({ path: p, value: v, from: joinPath(joinPath(from, 'set'), p) }));
          const value = entry.value as string | number | boolean;
          next.push([...prefix, { axis: axis.name, value, label: (entry.label as string | undefined) ?? formatValue(axis, value), set }]);
        } else if (figure) {
          const value = entry as string | number | boolean | null;
          next.push([...prefix, { axis: axis.name, value, label: formatValue(axis, value), set: [] }]);
        } else {
          if (axis.path === undefined) {
            diagnostics.push({
              loc: locate(located, from),
              path: from,
              message: `axis '${axis.name}' has no path:, so each value must be { value, label, set: { path: value } } (or name the axis in grid.metric as {${axis.name}} to make it choose the figure shown)`,
            });
            return;
          }
          const value = entry as string | number | boolean | null;
          next.push([...prefix, { axis: axis.name, value, label: formatValue(axis, value), set: [{ path: axis.path, value, from }] }]);
        }
      });
    }
    points = next;
  });
  return points.map((values) => ({
    values,
    id: values.map((v) => `${v.axis}=${String(v.value)}`).join('/'),
    labels: values.map((v) => v.label),
  }));
}

/**
 * Expands `grid:` into its cells (rows × columns) and the table's entries. A recipe without a grid
 * is one cell, id `default`. Axes named in `grid.metric` (`{axis}`) are figure axes: their values
 * choose the figure an entry shows, so the entries that differ only in them show one cell.
 */
export function expandGrid(located: Located, diagnostics: Diagnostic[]): Grid {
  const grid = getPath(located.value, 'grid');
  const rowAxes = (isObject(grid) && Array.isArray(grid.rows) ? grid.rows : []) as unknown as AxisSpec[];
  const columnAxes = (isObject(grid) && Array.isArray(grid.columns) ? grid.columns : []) as unknown as AxisSpec[];
  const metric = isObject(grid) && typeof grid.metric === 'string' && grid.metric !== '' ? grid.metric : 'accuracy';
  const percent = isObject(grid) && typeof grid.percent === 'boolean' ? grid.percent : true;
  const names = new Map<string, string>();
  [...rowAxes.map((a, i) => [a, `grid.rows.${i}`] as const), ...columnAxes.map((a, i) => [a, `grid.columns.${i}`] as const)].forEach(([a, at]) => {
    if (names.has(a.name))
      diagnostics.push({
        loc: locate(located, `${at}.name`),
        path: `${at}.name`,
        message: `axis name '${a.name}' is used twice (also at ${names.get(a.name)}); names make cell ids, so they must differ`,
      });
    names.set(a.name, at);
  });
  const figureAxes = [...new Set(metricPlaceholders(metric))];
  for (const name of figureAxes) {
    if (names.has(name)) continue;
    diagnostics.push({
      loc: locate(located, 'grid.metric'),
      path: 'grid.metric',
      message: `{${name}} names no axis of the grid${names.size ? ` (axes: ${[...names.keys()].join(', ')})` : ''}; a {placeholder} stands for the value of the axis of that name`,
    });
  }
  const figures = new Set(figureAxes);
  const rows = expandSide(rowAxes, 'rows', figures, located, diagnostics);
  const columns = expandSide(columnAxes, 'columns', figures, located, diagnostics);
  // A cell's own point on a side: the values of the axes that set something.
  const own = (p: GridPoint): GridPoint => {
    const values = p.values.filter((v) => !figures.has(v.axis));
    return { values, id: values.map((v) => `${v.axis}=${String(v.value)}`).join('/'), labels: values.map((v) => v.label) };
  };
  const cells: Cell[] = [];
  const entries: GridEntry[] = [];
  const cellIds = new Set<string>();
  const entryIds = new Set<string>();
  rows.forEach((r, i) =>
    columns.forEach((c, j) => {
      const rowPoint = own(r);
      const columnPoint = own(c);
      const cell = [rowPoint.id, columnPoint.id].filter(Boolean).join('/') || 'default';
      if (!cellIds.has(cell)) {
        cellIds.add(cell);
        cells.push({ id: cell, row: i, column: j, rowPoint, columnPoint });
      }
      const id = [r.id, c.id].filter(Boolean).join('/') || 'default';
      if (entryIds.has(id))
        diagnostics.push({ loc: locate(located, 'grid'), path: 'grid', message: `two cells share the id '${id}'; give axis values distinct values` });
      entryIds.add(id);
      const value = new Map([...r.values, ...c.values].map((v) => [v.axis, String(v.value)]));
      entries.push({ id, row: i, column: j, cell, figure: metric.replace(/\{([^{}]*)\}/g, (_, name: string) => value.get(name) ?? `{${name}}`) });
    }),
  );
  return { rows, columns, rowAxes, columnAxes, cells, entries, metric, figureAxes, percent };
}

/** A computed column (`grid.summary` in a recipe), such as Average or Decline (↓). */
export interface SummaryColumn {
  readonly label: string;
  readonly of: (typeof SUMMARY_KINDS)[number];
}

/**
 * Grid columns that share the values of every column axis but the innermost (one dataset's
 * folds, say): the span one summary column covers. Groups are consecutive runs of columns.
 */
export interface ColumnGroup {
  /** Labels of the outer column axes. */
  readonly labels: readonly string[];
  /** Indices of the grid columns in the group. */
  readonly columns: readonly number[];
}

/** A row of numbers from the paper for a method that is not run here. */
export interface PaperRow {
  readonly label: string;
  /** One per grid column. */
  readonly values: readonly (number | null)[];
  /** summary[group][summary column], as printed in the paper. */
  readonly summary: readonly (readonly (number | null)[])[];
}

export function columnGroups(grid: Pick<Grid, 'columns'>): ColumnGroup[] {
  const groups: (ColumnGroup & { id: string; columns: number[] })[] = [];
  grid.columns.forEach((point, j) => {
    const outer = point.values.slice(0, -1);
    const id = outer.map((v) => `${v.axis}=${String(v.value)}`).join('/');
    const last = groups[groups.length - 1];
    if (last && last.id === id) last.columns.push(j);
    else groups.push({ id, labels: point.labels.slice(0, -1), columns: [j] });
  });
  return groups.map(({ labels, columns }) => ({ labels, columns }));
}

/**
 * Splits a row of numbers written as the table is printed (each group's columns, then that
 * group's summary columns) into the grid columns' numbers and the summaries' numbers.
 */
export function splitPrinted<T>(row: readonly T[], groups: readonly ColumnGroup[], summaries: number): { values: T[]; summary: T[][] } {
  const values: T[] = [];
  const summary: T[][] = [];
  let at = 0;
  for (const g of groups) {
    for (const _ of g.columns) values.push(row[at++]!);
    summary.push(row.slice(at, at + summaries));
    at += summaries;
  }
  return { values, summary };
}

/** Width of a printed row: every grid column, and each group's summary columns. */
export function printedWidth(columns: number, groups: number, summaries: number): number {
  return columns + groups * summaries;
}
