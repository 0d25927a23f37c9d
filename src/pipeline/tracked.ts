import path from 'node:path';
import type { CellAxis, CellInfo, CellModel, DatasetInput, Tracker } from '../contracts/tracker.ts';
import { ExportError, exportModel } from '../export/export.ts';
import { CELL_MODEL_DIR, ModelBundleError } from '../model/bundle.ts';
import type { ResolvedCell, ResolvedRecipe } from '../recipe/recipe.ts';
import type { CellMetrics } from './cell-context.ts';
import { cellStageKeys } from './stage-keys.ts';

/**
 * What a tracker is told about a cell besides its id and config: its values on the grid's axes,
 * and the pre-training it shares with other cells (its stage key and the settings it depends on).
 */
export function trackedCell(recipe: ResolvedRecipe, cell: ResolvedCell): CellInfo {
  const { config } = cell;
  const axes = (point: ResolvedCell['rowPoint'], side: CellAxis['side']): CellAxis[] =>
    point.values.map((v) => ({ axis: v.axis, side, value: String(v.value), label: v.label }));
  const pretrain = cellStageKeys(recipe.registry, config, { seed: config.seed, scale: recipe.scale, recipeDir: path.dirname(recipe.file) }).pretrain;
  return {
    id: cell.id,
    config: config as unknown as Record<string, unknown>,
    grid: [...axes(cell.rowPoint, 'row'), ...axes(cell.columnPoint, 'column')],
    shared: {
      pretrain: { key: pretrain, config: { seed: config.seed, model: { backbone: config.model.backbone }, pipeline: { pretrain: config.pipeline.pretrain } } },
    },
  };
}

/** The data a finished cell trained on, as a tracker's run input. */
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
 * A finished cell's kept model exported to ONNX (cells/<id>/model/model.onnx) for a tracker that
 * logs models; undefined when the tracker does not, or the model does not export (said once).
 */
export async function trackedModel(tracker: Tracker, recipe: ResolvedRecipe, cellDir: string, note: (text: string) => void): Promise<CellModel | undefined> {
  if (!tracker.logsModels) return undefined;
  try {
    const r = await exportModel(path.join(cellDir, CELL_MODEL_DIR), { registry: recipe.registry });
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
      note(`ssfer: ${tracker.name}: ${expected ? "the cells' models are" : 'this cell’s model is'} not logged: ${(err as Error).message}`);
    if (expected) noted.add(tracker);
    return undefined;
  }
}

const noted = new WeakSet<Tracker>();
