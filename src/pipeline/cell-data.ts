import type { FaceBoxes } from '../contracts/training.ts';
import type { FerData } from '../contracts/dataset.ts';
import type { LabelSplit } from '../contracts/training.ts';
import { hashOf } from '../core/json.ts';
import type { PluginSlot } from '../core/plugin.ts';
import { Rng } from '../core/rng.ts';
import type { CellConfig } from '../recipe/schema.ts';
import type { CellContext } from './cell-context.ts';

/** The cell's dataset slot with its folder from `data.roots` when the slot does not name one. */
export function datasetSlot(config: CellConfig): PluginSlot {
  const slot = config.data.dataset;
  const root = config.data.roots[slot.use];
  return root && !slot.root ? { ...slot, root } : slot;
}

export interface CellData {
  readonly data: FerData;
  /** A hash of what the data depends on; it also seeds the label split. */
  readonly key: string;
}

/** The cell's data at the model's image size, loaded (or drawn) once per run for every cell that asks for the same. */
export async function loadData(c: CellContext, imageSize: number): Promise<CellData> {
  const slot = datasetSlot(c.config);
  const size = c.config.data.size;
  const key = hashOf({ dataset: slot, size, imageSize, seed: c.seed });
  const memo = c.scope.data;
  let pending = memo.get(key);
  if (!pending) {
    const cacheDir = c.hooks.dataCacheDir;
    pending = c.create('dataset', slot).load({ imageSize, trainSize: size.train, testSize: size.test, ...(cacheDir ? { cacheDir } : {}) });
    memo.set(key, pending);
    pending.catch(() => memo.delete(key));
  }
  return { data: await pending, key };
}

export interface CellSplit extends LabelSplit {
  /** The label each training image trains with (the sampler's, where it injected noise). */
  readonly labels: Int32Array;
  /** The sampler's description of the budget, for tables. */
  readonly budget: string;
}

/** Which training images keep their labels, drawn from a stream of the data and the sampler's options. */
export function splitLabels(c: CellContext, { data, key }: CellData): CellSplit {
  const sampler = c.create('sampler', c.config.data.labels);
  const rng = Rng.derive(c.seed, 'labels', key, hashOf(c.config.data.labels));
  const split = sampler.split(data.train.labels, data.classes.length, rng, { ...(data.train.folds ? { folds: data.train.folds } : {}) });
  return { ...split, labels: split.labels ?? data.train.labels, budget: sampler.budget };
}

/** The dataset's picture at the cell's image size (what its classes look like there), when it has one; drawn once per run. */
export function datasetPicture(c: CellContext, imageSize: number): Promise<Uint8Array | null> {
  const slot = datasetSlot(c.config);
  const key = hashOf({ dataset: slot, imageSize, seed: c.seed });
  const memo = c.scope.pictures;
  let pending = memo.get(key);
  if (!pending) {
    const source = c.create('dataset', slot);
    pending = source.picture ? source.picture(imageSize) : Promise.resolve(null);
    memo.set(key, pending);
    pending.catch(() => memo.delete(key));
  }
  return pending;
}

/** A face box per training image, from the cell's face-boxes plugin, and the note that says where they came from. */
export function faceBoxes(c: CellContext, data: FerData, imageSize: number): Promise<FaceBoxes> {
  const { note, dataCacheDir } = c.hooks;
  return c.create('face-boxes', c.config.data.boxes).boxes(data.train, { imageSize, note, ...(dataCacheDir ? { cacheDir: dataCacheDir } : {}) });
}
