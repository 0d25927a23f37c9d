import type { Rng } from '../../../src/core/rng.ts';
import { indicesByClass } from '../../../src/data/stratify.ts';

/**
 * A fold id (0..k−1) per image. Each class is shuffled and dealt round-robin, the deal going on
 * where the previous class stopped, so a class's count differs by at most one between folds and
 * so do the folds' sizes.
 */
export function stratifiedFolds(labels: Int32Array, numClasses: number, k: number, rng: Rng): Int32Array {
  const fold = new Int32Array(labels.length);
  let next = 0;
  for (const idx of indicesByClass(labels, numClasses)) {
    rng.shuffle(idx);
    for (const i of idx) {
      fold[i] = next;
      next = (next + 1) % k;
    }
  }
  return fold;
}

/** Checks a dataset's own fold ids against the labels and the K the recipe asks for. */
export function checkOfficialFolds(folds: Int32Array, size: number, k: number): Int32Array {
  if (folds.length !== size) throw new Error(`the dataset gives ${folds.length} fold ids for ${size} training images`);
  let max = -1;
  for (let i = 0; i < folds.length; i++) {
    const f = folds[i]!;
    if (f < 0) throw new Error(`the dataset's fold id ${f} at index ${i} is negative`);
    max = Math.max(max, f);
  }
  if (max + 1 !== k) {
    throw new Error(
      `the dataset defines ${max + 1} folds but the sampler asks for folds: ${k}; set folds: ${max + 1}, or use_dataset_folds: false for seeded stratified folds`,
    );
  }
  return folds;
}
