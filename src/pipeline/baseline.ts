import type { FerData } from '../contracts/dataset.ts';
import { hashOf } from '../core/json.ts';
import { deriveSeed } from '../core/rng.ts';
import type { CellContext } from './cell-context.ts';
import type { CellData, CellSplit } from './cell-data.ts';
import { evaluate } from './evaluate.ts';

/**
 * The cell's sanity baseline: a linear classifier on the pixels (evaluation.linear_probe),
 * trained on the cell's own labeled images at the cell's image size and evaluated where the cell
 * is. A pipeline that does not beat it learns less than the pixels give away. Cells with the same
 * data, labeled images and probe settings share one probe per run. Null when the recipe turns it off.
 */
export async function linearProbeAccuracy(c: CellContext, loaded: CellData, split: CellSplit, boxes: Float32Array): Promise<number | null> {
  const probe = c.config.evaluation.linear_probe;
  if (!probe.enabled) return null;
  const { data } = loaded;
  const key = hashOf({
    data: loaded.key,
    labeled: hashOf(Array.from(split.labeled)),
    labels: hashOf(Array.from(split.labels)),
    heldOut: split.heldOut ? hashOf(Array.from(split.heldOut)) : null,
    probe,
    seed: c.seed,
  });
  const memo = c.scope.baselines;
  let pending = memo.get(key);
  if (!pending) {
    pending = trainProbe(c, data, split, boxes);
    memo.set(key, pending);
    pending.catch(() => memo.delete(key));
  }
  return pending;
}

async function trainProbe(c: CellContext, data: FerData, split: CellSplit, boxes: Float32Array): Promise<number> {
  const probe = c.config.evaluation.linear_probe;
  const backbone = c.create('backbone', { ...probe.backbone, image_size: data.imageSize });
  const seed = deriveSeed(c.seed, 'linear-probe');
  const model = backbone.build(data.classes.length, seed);
  try {
    const stage = c.create('finetune', probe.training);
    const result = await stage.run(
      {
        model,
        buildCopy: () => backbone.build(data.classes.length, seed, { trainable: false }),
        data,
        labeled: split.labeled,
        unlabeled: new Int32Array(0),
        labels: split.labels,
        boxes,
        seed,
      },
      { shouldStop: c.hooks.shouldStop },
    );
    result.ema?.dispose();
    const testSplit = split.heldOut ? data.train : data.test;
    return evaluate(model, testSplit, data.imageSize, data.classes.length, c.config.evaluation.batch_size, split.heldOut).accuracy;
  } finally {
    model.dispose();
  }
}
