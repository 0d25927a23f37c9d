import path from 'node:path';
import { parse as parseYamlValue } from 'yaml';
import type { PluginRegistry } from '../core/registry.ts';
import { createRegistry } from '../core/registry.ts';
import { PluginEntryError, resolvePluginEntry } from '../core/plugin-import.ts';
import { RecipeError, displayFile, formatDiagnostic, type Diagnostic, type Loc } from './diagnostics.ts';
import { columnGroups, expandGrid, printedWidth, splitPrinted, type Cell, type Grid, type PaperRow, type SummaryColumn } from './grid.ts';
import { loadRecipeFile } from './load.ts';
import { findReservedKey, getPath, isObject, joinPath, pathWithin, RESERVED_KEYS, reservedKeyMessage, type Json, type JsonObject } from '../core/json.ts';
import { assign, locate, mergeLocated, withValue, type Located } from './located.ts';
import { withoutCredentials, type Credentials } from '../core/uri.ts';
import { SCALES, type CellConfig, type Scale } from './schema.ts';
import { validateConfig, type SlotChoice } from './validate.ts';

export interface Override {
  readonly path: string;
  readonly value: Json;
  readonly loc: Loc;
}

/** Parses `--set path=value`; the value is read as YAML, so `3`, `1e-4`, `true`, `[a, b]` are typed. */
export function parseOverride(arg: string): Override {
  const eq = arg.indexOf('=');
  const loc: Loc = { file: `<--set ${arg}>`, line: 1, col: eq + 2 };
  if (eq <= 0)
    throw new RecipeError([
      { loc: { ...loc, col: 1 }, path: '--set', message: `expected path=value (for example --set pipeline.pretrain.mask_ratio=0.75), got '${arg}'` },
    ]);
  const p = arg.slice(0, eq).trim();
  if (!/^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/.test(p)) {
    throw new RecipeError([{ loc: { ...loc, col: 1 }, path: '--set', message: `'${p}' is not a dotted path such as pipeline.supervised.lr` }]);
  }
  const parts = p.split('.');
  const reserved = parts.findIndex((part) => RESERVED_KEYS.has(part));
  if (reserved >= 0) {
    throw new RecipeError([
      { loc: { ...loc, col: parts.slice(0, reserved).join('.').length + (reserved ? 2 : 1) }, path: '--set', message: reservedKeyMessage(parts[reserved]!) },
    ]);
  }
  let value: Json;
  try {
    value = parseYamlValue(arg.slice(eq + 1)) as Json;
  } catch (err) {
    throw new RecipeError([{ loc, path: p, message: `cannot read the value: ${(err as Error).message.split('\n')[0]}` }]);
  }
  const inValue = findReservedKey(value);
  if (inValue !== undefined) throw new RecipeError([{ loc, path: joinPath(p, inValue), message: reservedKeyMessage(inValue.split('.').pop()!) }]);
  return { path: p, value: value === undefined ? null : value, loc };
}

export interface ResolvedCell extends Cell {
  /** The full config of this cell, validated, every default filled in. */
  readonly config: CellConfig;
  readonly slots: readonly SlotChoice[];
}

export interface ResolvedRecipe {
  readonly file: string;
  /** File name without extension: names results folders and MLflow experiments. */
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly seed: number;
  /** How many seeds every cell runs (`seeds:`, `--seeds`); seed k of a cell is its seed + k (see seedOf). */
  readonly seeds: number;
  readonly scale: Scale;
  readonly grid: Grid;
  readonly cells: readonly ResolvedCell[];
  /** The row every other row is compared with seed by seed (`grid.baseline`), by its index in grid.rows; null when none. */
  readonly baseline: { readonly row: number; readonly label: string } | null;
  /** Computed columns after each column group (`grid.summary`); empty when none. */
  readonly summary: readonly SummaryColumn[];
  /**
   * The paper's numbers. `values` is per grid row and grid column; `summary[row][group][column]`
   * holds the paper's summary columns; `others` the rows of methods not run here.
   */
  readonly reference?: {
    source?: string;
    metric: string;
    values: (number | null)[][];
    summary?: (number | null)[][][];
    others?: PaperRow[];
  };
  readonly registry: PluginRegistry;
  /** The recipe as written (extends merged, scale applied, overrides applied), before the grid. */
  readonly located: Located;
  /** User info taken out of the URIs of the cells' configs, by the URI without it (never stored). */
  readonly credentials: ReadonlyMap<string, Credentials>;
}

export interface ResolveOptions {
  scale?: string;
  sets?: readonly string[];
  /** `--seeds N` as written: every cell runs N seeds (applied after --set, like --set seeds=N). */
  seeds?: string;
  /** Plugin files given on the command line (relative to the current folder). */
  pluginFiles?: readonly string[];
  registry?: PluginRegistry;
}

/**
 * Loads, merges, scales, expands and validates a recipe. Every problem in every cell is collected
 * and thrown together as one RecipeError; nothing is run or written.
 */
export async function resolveRecipe(file: string, opts: ResolveOptions = {}): Promise<ResolvedRecipe> {
  const diagnostics: Diagnostic[] = [];
  const overrides = [...(opts.sets ?? []).map((s) => parseOverride(s)), ...(opts.seeds !== undefined ? [seedsOverride(opts.seeds)] : [])];
  let located = loadRecipeFile(file);

  const scaleWritten = getPath(located.value, 'scale');
  const scaleName = opts.scale ?? (typeof scaleWritten === 'string' ? scaleWritten : 'small');
  if (!(SCALES as readonly string[]).includes(scaleName)) {
    throw new RecipeError([
      {
        loc: opts.scale !== undefined ? { file: `<--scale ${opts.scale}>`, line: 1, col: 1 } : locate(located, 'scale'),
        path: 'scale',
        message: `unknown scale '${scaleName}'; choose one of ${SCALES.join(', ')}`,
      },
    ]);
  }
  const scale = scaleName as Scale;
  located = mergeLocated(located, located, `scales.${scale}`);
  // A scale is a profile for a family of recipes: where a recipe chose another plugin, the
  // profile's options for the base plugin are dropped rather than reported (see validate.ts).
  const overlay = getPath(located.value, `scales.${scale}`);
  if (isObject(overlay)) for (const leaf of leafPaths(overlay, '')) located.inherited!.add(leaf);
  located =
    withValue(located, 'scale', scale, opts.scale !== undefined ? { file: `<--scale ${scale}>`, line: 1, col: 1 } : locate(located, 'scale')) ?? located;

  const registry = opts.registry ?? (await createRegistry(await pluginFilesOf(located, opts.pluginFiles ?? [], diagnostics)));
  if (diagnostics.length) throw new RecipeError(diagnostics);

  // Overrides apply to the recipe before its grid is expanded, so that --set grid.… changes the
  // grid itself (and --set reference.… the paper's numbers).
  located = applyOverrides(located, overrides, diagnostics);
  // The paper's numbers belong to the grid as written: a grid changed on the command line drops
  // them, unless the command line gives them too.
  const regrid = overrides.find((o) => ['grid', 'grid.rows', 'grid.columns'].some((p) => pathWithin(o.path, p)));
  if (regrid && !overrides.some((o) => pathWithin(o.path, 'reference')) && getPath(located.value, 'reference') !== undefined)
    located = withValue(located, 'reference', null, regrid.loc) ?? located;
  if (diagnostics.length) throw new RecipeError(diagnostics);
  const grid = expandGrid(located, diagnostics);
  overridesOfAxes(overrides, grid, located, diagnostics);
  if (diagnostics.length) throw new RecipeError(diagnostics);
  const cells: ResolvedCell[] = [];
  const credentials = new Map<string, Credentials>();
  const seen = new Set<string>();
  const add = (ds: readonly Diagnostic[]) => {
    for (const d of ds) {
      const key = formatDiagnostic(d);
      if (!seen.has(key)) {
        seen.add(key);
        diagnostics.push(d);
      }
    }
  };
  for (const cell of grid.cells) {
    let cellLocated: Located | undefined = located;
    for (const v of [...cell.rowPoint.values, ...cell.columnPoint.values]) {
      for (const s of v.set) {
        const next: Located | undefined = assign(cellLocated!, s.path, s.value, locate(located, s.from));
        if (!next) {
          add([{ loc: locate(located, s.from), path: s.path, message: NOT_SETTABLE }]);
          continue;
        }
        cellLocated = next;
      }
    }
    const v = validateConfig(cellLocated!, registry);
    add(v.diagnostics);
    // Credentials never reach a stored or sent config (resolved recipe, config.json, MLflow
    // params): they are kept beside it, for the one client that needs them.
    const config = withoutCredentials(v.config, credentials).value;
    cells.push({ ...cell, config: config as unknown as CellConfig, slots: v.slots });
  }
  sameSeeds(cells, located, diagnostics);
  sameLauncher(cells, located, diagnostics);
  const baseline = baselineOf(located, grid, diagnostics);
  if (!diagnostics.length) checkFigures(located, grid, cells, registry, diagnostics);
  const summary = summaryOf(located, grid, diagnostics);
  const reference = checkReference(located, grid, summary.length, diagnostics);
  if (diagnostics.length) throw new RecipeError(diagnostics);
  const first = cells[0]!.config;
  return {
    file: path.resolve(file),
    name: path.basename(file).replace(/\.(ya?ml)$/i, ''),
    title: first.title as string,
    description: (first.description as string | undefined) ?? '',
    seed: first.seed as number,
    seeds: first.seeds as number,
    scale,
    grid,
    cells,
    baseline,
    summary,
    reference,
    registry,
    located,
    credentials,
  };
}

/**
 * A configuration made of the core schema's defaults and the given values alone, without a recipe
 * file (the dataset slot of `ssfer synth`), validated like a cell; problems name the flags.
 */
export async function resolveConfig(
  overrides: readonly Override[],
  opts: { pluginFiles?: readonly string[] } = {},
): Promise<{ config: CellConfig; registry: PluginRegistry }> {
  const registry = await createRegistry(opts.pluginFiles ?? []);
  const diagnostics: Diagnostic[] = [];
  const located = applyOverrides({ value: { title: '(command line)' }, values: new Map(), keys: new Map(), inherited: new Set() }, overrides, diagnostics);
  const v = validateConfig(located, registry);
  diagnostics.push(...v.diagnostics);
  if (diagnostics.length) throw new RecipeError(diagnostics);
  return { config: v.config as unknown as CellConfig, registry };
}

const NOT_SETTABLE = 'cannot be set: a value that is not a mapping stands on the way';

/** `--set` overrides applied in order; one that cannot be set is reported at its flag. */
function applyOverrides(located: Located, overrides: readonly Override[], diagnostics: Diagnostic[]): Located {
  for (const o of overrides) {
    const next = assign(located, o.path, o.value, o.loc);
    if (next) located = next;
    else diagnostics.push({ loc: o.loc, path: o.path, message: NOT_SETTABLE });
  }
  return located;
}

/**
 * An override of what a grid axis sets would make the axis's rows (or columns) one and the same
 * configuration under different labels: refused, naming the axis and where it is written.
 */
function overridesOfAxes(overrides: readonly Override[], grid: Grid, located: Located, diagnostics: Diagnostic[]): void {
  const sets = grid.cells.flatMap((c) => [...c.rowPoint.values, ...c.columnPoint.values]).flatMap((v) => v.set.map((s) => ({ axis: v.axis, s })));
  for (const o of overrides) {
    const hit = sets.find(({ s }) => pathWithin(o.path, s.path) || pathWithin(s.path, o.path));
    if (!hit) continue;
    const at = locate(located, hit.s.from);
    diagnostics.push({
      loc: o.loc,
      path: o.path,
      message: `the grid's axis '${hit.axis}' sets ${hit.s.path} (${at ? `${displayFile(at.file)}:${at.line}:${at.col}` : 'grid'}): this override would make the axis's values one and the same configuration under different labels; drop it, or change the axis (--set grid.rows=… or grid.columns=…)`,
    });
  }
}

/** `--seeds N`: the value read as YAML (so a wrong one is reported by the schema, at the flag). */
function seedsOverride(text: string): Override {
  const loc: Loc = { file: `<--seeds ${text}>`, line: 1, col: 1 };
  let value: Json;
  try {
    value = parseYamlValue(text) as Json;
  } catch {
    value = text;
  }
  return { path: 'seeds', value: value ?? null, loc };
}

/**
 * Seed k of a cell whose seed is `seed`: seed + k, modulo 2^32 (seeds are 32-bit). Seed 0 is the
 * seed itself, so a run of one seed is the run a recipe gave before it had seeds, and seed k of a
 * table can be run on its own with --set seed=<seed + k>.
 */
export function seedOf(seed: number, k: number): number {
  return (seed + k) % 2 ** 32;
}

/**
 * Every cell runs the same number of seeds: a table entry's interval and the paired differences
 * compare cells seed by seed. A grid value that sets another number is reported where it is written.
 */
function sameSeeds(cells: readonly ResolvedCell[], located: Located, diagnostics: Diagnostic[]): void {
  const first = cells[0]?.config.seeds;
  for (const cell of cells) {
    if (cell.config.seeds === first) continue;
    const set = [...cell.rowPoint.values, ...cell.columnPoint.values].flatMap((v) => v.set).find((s) => s.path === 'seeds');
    diagnostics.push({
      loc: set ? locate(located, set.from) : locate(located, 'seeds'),
      path: 'seeds',
      message: `cell '${cell.id}' runs ${cell.config.seeds} seeds and '${cells[0]!.id}' ${first}; every cell runs the same seeds (the table compares cells seed by seed): set seeds once, at the top of the recipe or with --seeds`,
    });
    return;
  }
}

/**
 * The launcher trains the run's units, so it is the run's: a grid value that gives one cell another
 * launcher (or other launcher options) is reported where it is written.
 */
function sameLauncher(cells: readonly ResolvedCell[], located: Located, diagnostics: Diagnostic[]): void {
  const text = (c: ResolvedCell) => JSON.stringify(c.config.launcher);
  for (const cell of cells) {
    if (text(cell) === text(cells[0]!)) continue;
    const set = [...cell.rowPoint.values, ...cell.columnPoint.values]
      .flatMap((v) => v.set)
      .find((s) => s.path === 'launcher' || s.path.startsWith('launcher.'));
    diagnostics.push({
      loc: set ? locate(located, set.from) : locate(located, 'launcher'),
      path: set?.path ?? 'launcher',
      message: `cell '${cell.id}' would be trained by launcher ${text(cell)} and '${cells[0]!.id}' by ${text(cells[0]!)}; the launcher trains the whole run: set it once, at the top of the recipe or with --launcher`,
    });
    return;
  }
}

/**
 * The row named by `grid.baseline.row`: a row's label as printed, its id, or (with one row axis)
 * its value. Naming no row, or several, is reported at the value with the rows there are.
 */
function baselineOf(located: Located, grid: Grid, diagnostics: Diagnostic[]): ResolvedRecipe['baseline'] {
  const written = getPath(located.value, 'grid.baseline.row');
  if (written === undefined || written === null || typeof written === 'object') return null; // absent, or the schema reports it
  const at = 'grid.baseline.row';
  const name = String(written);
  const rows = grid.rows.map((r, i) => ({
    index: i,
    label: r.labels.join(' '),
    id: r.id,
    value: r.values.length === 1 ? String(r.values[0]!.value) : undefined,
  }));
  const listed = rows.map((r) => (r.label === r.id ? r.id : `${r.label} (${r.id})`)).join(', ');
  if (grid.rowAxes.length === 0) {
    diagnostics.push({
      loc: locate(located, at),
      path: at,
      message: 'a baseline row is compared with the other rows, and this grid has no row axes; add grid.rows or remove grid.baseline',
    });
    return null;
  }
  const matches = rows.filter((r) => r.label === name || r.id === name || r.value === name);
  if (matches.length === 1) return { row: matches[0]!.index, label: matches[0]!.label };
  diagnostics.push({
    loc: locate(located, at),
    path: at,
    message:
      matches.length === 0
        ? `'${name}' names no row; name one by its label, its id or its value: ${listed}`
        : `'${name}' names ${matches.length} rows (${matches.map((r) => r.id).join(', ')}); name one by its id`,
  });
  return null;
}

/**
 * The plugin files a recipe names (`plugins:`, each a path relative to the recipe file that lists
 * it or an installed package's name, resolved from that file's folder) and `--plugin` names
 * (relative to the current folder). One that cannot be found is reported where it was written.
 */
async function pluginFilesOf(located: Located, cli: readonly string[], diagnostics: Diagnostic[]): Promise<string[]> {
  const named: { entry: string; base: string; loc: Loc; path: string }[] = [];
  const list = getPath(located.value, 'plugins');
  if (Array.isArray(list)) {
    list.forEach((entry, i) => {
      if (typeof entry !== 'string') return; // the schema reports it
      const loc = locate(located, `plugins.${i}`) ?? { file: '<recipe>', line: 1, col: 1 };
      // Relative to the recipe file that lists it (which may be a base recipe).
      const base = loc.file.startsWith('<') ? process.cwd() : path.dirname(loc.file);
      named.push({ entry, base, loc, path: `plugins.${i}` });
    });
  }
  for (const f of cli) named.push({ entry: f, base: process.cwd(), loc: { file: `<--plugin ${f}>`, line: 1, col: 1 }, path: '--plugin' });
  const files: string[] = [];
  for (const n of named) {
    try {
      files.push(await resolvePluginEntry(n.entry, n.base));
    } catch (err) {
      if (!(err instanceof PluginEntryError)) throw err;
      const fix = err.message.includes('not installed') ? '' : '; fix the path (relative to the recipe that lists it, or to the current folder for --plugin)';
      diagnostics.push({ loc: n.loc, path: n.path, message: `${err.file ? err.message.replace(err.file, displayFile(err.file)) : err.message}${fix}` });
    }
  }
  return files;
}

/**
 * The first key of every figure a cell's metrics.json holds (CellMetrics: the numbers, and the
 * groups of numbers), for `grid.metric`.
 */
const FIGURE_ROOTS = [
  'accuracy',
  'accuracy_raw',
  'test_count',
  'labeled_count',
  'unlabeled_count',
  'epochs',
  'steps',
  'seconds',
  'health',
  'per_class',
  'analysis',
];

/**
 * Every figure the table is to show exists: its first key is one of metrics.json's numbers or
 * groups, and a figure of an analysis (`analysis.<name>.<figure>`) names an analysis the cell
 * lists in `evaluation.analyses` and, where the plugin lists its figures, one of them.
 */
function checkFigures(located: Located, grid: Grid, cells: readonly ResolvedCell[], registry: PluginRegistry, diagnostics: Diagnostic[]): void {
  const at = getPath(located.value, 'grid.metric') === undefined ? 'grid' : 'grid.metric';
  const loc = locate(located, at);
  const byId = new Map(cells.map((c) => [c.id, c]));
  const shows = `grid.metric '${grid.metric}'`;
  const problems = new Set<string>();
  // Per analysis: the figures asked of it that it does not report, and what it reports.
  const unknown = new Map<string, { missing: Set<string>; known: readonly string[] }>();
  const absent = new Set<string>();
  for (const entry of grid.entries) {
    const figure = entry.figure;
    const root = figure.split('.')[0]!;
    if (!FIGURE_ROOTS.includes(root)) {
      problems.add(`${shows} shows '${figure}', which is not a figure of a cell's metrics.json; a figure's path starts with one of ${FIGURE_ROOTS.join(', ')}`);
      continue;
    }
    if (root !== 'analysis') continue;
    const config = byId.get(entry.cell)!.config as unknown as JsonObject;
    const listed = (getPath(config, 'evaluation.analyses') ?? []) as JsonObject[];
    const chosen = listed.find((a) => figure === `analysis.${String(a.use)}` || figure.startsWith(`analysis.${String(a.use)}.`));
    if (!chosen) {
      const name = figure.split('.')[1] ?? '';
      if (absent.has(name)) continue; // once per analysis, for the first cell without it
      absent.add(name);
      problems.add(
        `${shows} shows figures of the analysis '${name}', which cell ${entry.cell} does not run; add it to evaluation.analyses (the cell lists ${listed.length ? listed.map((a) => String(a.use)).join(', ') : 'none'})`,
      );
      continue;
    }
    const def = registry.get('analysis', String(chosen.use));
    if (!def.figures) continue;
    const { use: _use, ...options } = chosen;
    const known = def.figures(options as never);
    const rest = figure.slice(`analysis.${def.name}.`.length);
    if (known.includes(rest)) continue;
    const u = unknown.get(def.name) ?? { missing: new Set<string>(), known };
    u.missing.add(rest);
    unknown.set(def.name, u);
  }
  const list = (names: readonly string[]) => (names.length > 12 ? `${names.slice(0, 12).join(', ')}, …` : names.join(', '));
  for (const [name, u] of unknown)
    problems.add(`${shows}: the analysis '${name}' reports no figure ${list([...u.missing])} with its options here; it reports ${list(u.known) || 'none'}`);
  for (const message of problems) diagnostics.push({ loc, path: at, message });
}

function summaryOf(located: Located, grid: Grid, diagnostics: Diagnostic[]): SummaryColumn[] {
  const list = getPath(located.value, 'grid.summary');
  if (!Array.isArray(list) || list.length === 0) return [];
  if (grid.columnAxes.length === 0) {
    diagnostics.push({
      loc: locate(located, 'grid.summary'),
      path: 'grid.summary',
      message: 'summary columns are computed over column axes, and this grid has none; add grid.columns or remove grid.summary',
    });
    return [];
  }
  return list as unknown as SummaryColumn[]; // shape checked by the schema
}

/**
 * Reference rows are written as the table is printed: with summary columns, each column group's
 * numbers are followed by that group's summary numbers (Fold 1…5, Average, per dataset).
 */
function checkReference(located: Located, grid: Grid, summaries: number, diagnostics: Diagnostic[]): ResolvedRecipe['reference'] {
  const ref = getPath(located.value, 'reference');
  if (!isObject(ref) || !Array.isArray(ref.values)) return undefined;
  const groups = columnGroups(grid);
  const width = printedWidth(grid.columns.length, groups.length, summaries);
  const shape = summaries
    ? `the table has ${width} columns as printed (${grid.columns.length} grid columns, and ${summaries} summary column${summaries === 1 ? '' : 's'} after each of ${groups.length} group${groups.length === 1 ? '' : 's'})`
    : `the grid has ${grid.columns.length} columns`;
  const rowOf = (row: unknown, at: string): { values: (number | null)[]; summary: (number | null)[][] } => {
    if (!Array.isArray(row)) return { values: [], summary: [] }; // the schema reports it
    if (row.length !== width) diagnostics.push({ loc: locate(located, at), path: at, message: `has ${row.length} numbers but ${shape}` });
    return splitPrinted(row as (number | null)[], groups, summaries);
  };
  const rows = (ref.values as unknown[]).map((row, i) => rowOf(row, `reference.values.${i}`));
  if (rows.length !== grid.rows.length) {
    diagnostics.push({
      loc: locate(located, 'reference.values'),
      path: 'reference.values',
      message: `has ${rows.length} rows but the grid has ${grid.rows.length} (${grid.rows.map((r) => r.labels.join(' ') || '—').join(', ')})`,
    });
  }
  const others = (Array.isArray(ref.others) ? ref.others : []).flatMap((o, i) => {
    if (!isObject(o) || typeof o.label !== 'string') return [];
    return [{ label: o.label, ...rowOf(o.values, `reference.others.${i}.values`) }];
  });
  return {
    source: ref.source as string | undefined,
    metric: (ref.metric as string | undefined) ?? 'accuracy (%)',
    values: rows.map((r) => r.values),
    ...(summaries ? { summary: rows.map((r) => r.summary) } : {}),
    ...(others.length ? { others } : {}),
  };
}

function leafPaths(v: JsonObject, at: string): string[] {
  return Object.entries(v).flatMap(([k, sub]) => {
    const p = at === '' ? k : `${at}.${k}`;
    return isObject(sub) ? [p, ...leafPaths(sub, p)] : [p];
  });
}
