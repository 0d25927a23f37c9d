import path from 'node:path';
import type { CellAxis, CellInfo, CellModel, CellSummaryInfo, DatasetInput, Tracker } from '../contracts/tracker.ts';
import { ExportError, exportModel } from '../export/export.ts';
import { CELL_MODEL_DIR, ModelBundleError } from '../model/bundle.ts';
import type { ResolvedCell, ResolvedRecipe } from '../recipe/recipe.ts';
import type { CellMetrics } from './cell-context.ts';
import { cellStageKeys } from './stage-keys.ts';

/** A cell's values on the grid's axes, rows first. */
function gridOf(cell: ResolvedCell): CellAxis[] {
  const axes = (point: ResolvedCell['rowPoint'], side: CellAxis['side']): CellAxis[] =>
    point.values.map((v) => ({ axis: v.axis, side, value: String(v.value), label: v.label }));
  return [...axes(cell.rowPoint, 'row'), ...axes(cell.columnPoint, 'column')];
}

/** What a tracker is told about a cell over its seeds: its id, its config (seed 0's) and its values on the grid's axes. */
export function trackedSummary(cell: ResolvedCell): CellSummaryInfo {
  return { id: cell.id, config: cell.config as unknown as Record<string, unknown>, grid: gridOf(cell) };
}

/**
 * What a tracker is told about one seed of a cell (`cell` carries that seed in its config): its
 * values on the grid's axes, and the pre-training it shares with the other cells' same seed (its
 * stage key, which holds the seed, and the settings it depends on).
 */
export function trackedCell(recipe: ResolvedRecipe, cell: ResolvedCell, seedIndex: number): CellInfo {
  const { config } = cell;
  const pretrain = cellStageKeys(recipe.registry, config, { seed: config.seed, scale: recipe.scale, recipeDir: path.dirname(recipe.file) }).pretrain;
  return {
    id: cell.id,
    seedIndex,
    config: config as unknown as Record<string, unknown>,
    grid: gridOf(cell),
    shared: {
      pretrain: { key: pretrain, config: { seed: config.seed, model: { backbone: config.model.backbone }, pipeline: { pretrain: config.pipeline.pretrain } } },
    },
  };
}

/** The data a finished seed of a cell trained on, as a tracker's run input. */
export function trackedInputs(metrics: CellMetrics): DatasetInput[] {
  const d = metrics.dataset;
  if (!d.key) return [];
  return [
    {
      name: d.stand_in ? `${d.display} (synthetic stand-in)` : d.display,
      digest: d.key,
      context: 'training',
      source: d.source ? { folder: d.source } : { standIn: d.stand_in ?? `${d.display}, drawn by ssfer` },
      profile: {
        train: d.train_count ?? null,
        test: metrics.test_count,
        classes: metrics.classes,
        image_size: d.image_size ?? null,
      },
    },
  ];
}

/**
 * A finished seed's kept model exported to ONNX (cells/<id>/seed-<k>/model/model.onnx) for a
 * tracker that logs models; undefined when the tracker does not, or the model does not export (said once).
 */
export async function trackedModel(tracker: Tracker, recipe: ResolvedRecipe, seedDir: string, note: (text: string) => void): Promise<CellModel | undefined> {
  if (!tracker.logsModels) return undefined;
  try {
    const r = await exportModel(path.join(seedDir, CELL_MODEL_DIR), { registry: recipe.registry });
    const m = r.manifest;
    return {
      onnx: r.file,
      imageSize: m.preprocessing.image_size,
      channels: m.preprocessing.channels,
      classes: m.classes,
      metadata: { classes: m.classes, preprocessing: m.preprocessing, source: m.source, backbone: m.backbone.plugin, ssfer_version: m.ssfer_version },
    };
  } catch (err) {
    // Tracking never fails a cell: its model stays in the cell folder.
    const expected = err instanceof ExportError || err instanceof ModelBundleError;
    if (!noted.has(tracker) || !expected)
      note(`ssfer: ${tracker.name}: ${expected ? "the cells' models are" : 'this seed’s model is'} not logged: ${(err as Error).message}`);
    if (expected) noted.add(tracker);
    return undefined;
  }
}

const noted = new WeakSet<Tracker>();
