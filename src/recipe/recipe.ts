import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYamlValue } from 'yaml';
import type { PluginRegistry } from '../core/registry.ts';
import { createRegistry } from '../core/registry.ts';
import { RecipeError, displayFile, formatDiagnostic, type Diagnostic, type Loc } from './diagnostics.ts';
import { expandGrid, type Cell, type Grid } from './grid.ts';
import { loadRecipeFile } from './load.ts';
import { assign, getPath, isObject, locate, mergeLocated, withValue, type Json, type JsonObject, type Located } from './located.ts';
import { SCALES, type Scale } from './schema.ts';
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
  if (eq <= 0) throw new RecipeError([{ loc: { ...loc, col: 1 }, path: '--set', message: `expected path=value (for example --set pipeline.pretrain.mask_ratio=0.75), got '${arg}'` }]);
  const p = arg.slice(0, eq).trim();
  if (!/^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/.test(p)) {
    throw new RecipeError([{ loc: { ...loc, col: 1 }, path: '--set', message: `'${p}' is not a dotted path such as pipeline.supervised.lr` }]);
  }
  let value: Json;
  try {
    value = parseYamlValue(arg.slice(eq + 1)) as Json;
  } catch (err) {
    throw new RecipeError([{ loc, path: p, message: `cannot read the value: ${(err as Error).message.split('\n')[0]}` }]);
  }
  return { path: p, value: value === undefined ? null : value, loc };
}

export interface ResolvedCell extends Cell {
  /** The full config of this cell, validated, every default filled in. */
  readonly config: JsonObject;
  readonly slots: readonly SlotChoice[];
}

export interface ResolvedRecipe {
  readonly file: string;
  /** File name without extension: names results folders and MLflow experiments. */
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly seed: number;
  readonly scale: Scale;
  readonly grid: Grid;
  readonly cells: readonly ResolvedCell[];
  readonly reference?: { source?: string; metric: string; values: (number | null)[][] };
  readonly registry: PluginRegistry;
  /** The recipe as written (extends merged, scale applied, overrides applied), before the grid. */
  readonly located: Located;
}

export interface ResolveOptions {
  scale?: string;
  sets?: readonly string[];
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
  const overrides = (opts.sets ?? []).map((s) => parseOverride(s));
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
  located = withValue(located, 'scale', scale, opts.scale !== undefined ? { file: `<--scale ${scale}>`, line: 1, col: 1 } : locate(located, 'scale')) ?? located;

  const registry = opts.registry ?? (await createRegistry(await pluginFilesOf(located, opts.pluginFiles ?? [], diagnostics)));
  if (diagnostics.length) throw new RecipeError(diagnostics);

  const grid = expandGrid(located, diagnostics);
  const cells: ResolvedCell[] = [];
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
          add([{ loc: locate(located, s.from), path: s.path, message: 'cannot be set: a value that is not a mapping stands on the way' }]);
          continue;
        }
        cellLocated = next;
      }
    }
    for (const o of overrides) {
      const next: Located | undefined = assign(cellLocated!, o.path, o.value, o.loc);
      if (!next) add([{ loc: o.loc, path: o.path, message: 'cannot be set: a value that is not a mapping stands on the way' }]);
      else cellLocated = next;
    }
    const v = validateConfig(cellLocated!, registry);
    add(v.diagnostics);
    cells.push({ ...cell, config: v.config, slots: v.slots });
  }
  const reference = checkReference(located, grid, diagnostics);
  if (diagnostics.length) throw new RecipeError(diagnostics);
  const first = cells[0]!.config;
  return {
    file: path.resolve(file),
    name: path.basename(file).replace(/\.(ya?ml)$/i, ''),
    title: first.title as string,
    description: (first.description as string | undefined) ?? '',
    seed: first.seed as number,
    scale,
    grid,
    cells,
    reference,
    registry,
    located,
  };
}

async function pluginFilesOf(located: Located, cli: readonly string[], diagnostics: Diagnostic[]): Promise<string[]> {
  const named: { file: string; loc: Loc; path: string }[] = [];
  const list = getPath(located.value, 'plugins');
  if (Array.isArray(list)) {
    list.forEach((entry, i) => {
      if (typeof entry !== 'string') return; // the schema reports it
      const loc = locate(located, `plugins.${i}`) ?? { file: '<recipe>', line: 1, col: 1 };
      // Relative to the recipe file that lists it (which may be a base recipe).
      const base = loc.file.startsWith('<') ? process.cwd() : path.dirname(loc.file);
      named.push({ file: path.resolve(base, entry), loc, path: `plugins.${i}` });
    });
  }
  for (const f of cli) named.push({ file: path.resolve(f), loc: { file: `<--plugin ${f}>`, line: 1, col: 1 }, path: '--plugin' });
  for (const n of named) {
    if (!fs.existsSync(n.file)) {
      diagnostics.push({ loc: n.loc, path: n.path, message: `plugin file not found: ${displayFile(n.file)}; fix the path (relative to the recipe that lists it, or to the current folder for --plugin)` });
    }
  }
  return named.map((n) => n.file);
}

function checkReference(located: Located, grid: Grid, diagnostics: Diagnostic[]): ResolvedRecipe['reference'] {
  const ref = getPath(located.value, 'reference');
  if (!isObject(ref) || !Array.isArray(ref.values)) return undefined;
  const values = ref.values as (number | null)[][];
  if (values.length !== grid.rows.length) {
    diagnostics.push({ loc: locate(located, 'reference.values'), path: 'reference.values', message: `has ${values.length} rows but the grid has ${grid.rows.length} (${grid.rows.map((r) => r.labels.join(' ') || '—').join(', ')})` });
  }
  values.forEach((row, i) => {
    if (Array.isArray(row) && row.length !== grid.columns.length) {
      diagnostics.push({ loc: locate(located, `reference.values.${i}`), path: `reference.values.${i}`, message: `has ${row.length} numbers but the grid has ${grid.columns.length} columns` });
    }
  });
  return { source: ref.source as string | undefined, metric: (ref.metric as string | undefined) ?? 'accuracy (%)', values };
}


function leafPaths(v: JsonObject, at: string): string[] {
  return Object.entries(v).flatMap(([k, sub]) => {
    const p = at === '' ? k : `${at}.${k}`;
    return isObject(sub) ? [p, ...leafPaths(sub, p)] : [p];
  });
}
