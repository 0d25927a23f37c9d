import type { Rng } from '../../../src/core/rng.ts';
import type { LabelSplit } from '../../../src/contracts/training.ts';

/**
 * Picks, in every class, `quota(count of that class)` random indices to keep labeled; everything
 * else is unlabeled. Both lists come back sorted, so the split does not depend on class order.
 */
export function stratifiedPick(labels: Int32Array, numClasses: number, rng: Rng, quota: (count: number, cls: number) => number): LabelSplit {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  labels.forEach((y, i) => {
    if (y < 0 || y >= numClasses) throw new Error(`label ${y} at index ${i} is outside 0..${numClasses - 1}`);
    byClass[y]!.push(i);
  });
  const labeled: number[] = [];
  const unlabeled: number[] = [];
  byClass.forEach((idx, c) => {
    rng.shuffle(idx);
    const k = Math.min(idx.length, quota(idx.length, c));
    labeled.push(...idx.slice(0, k));
    unlabeled.push(...idx.slice(k));
  });
  return {
    labeled: Int32Array.from(labeled.sort((a, b) => a - b)),
    unlabeled: Int32Array.from(unlabeled.sort((a, b) => a - b)),
  };
}
