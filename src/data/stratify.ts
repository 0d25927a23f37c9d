import type { Rng } from '../core/rng.ts';
import type { LabelSplit } from '../contracts/training.ts';

/** Indices per class, in index order; a label outside 0..numClasses−1 is an error. */
export function indicesByClass(labels: Int32Array, numClasses: number, pool?: ArrayLike<number>): number[][] {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  const add = (i: number) => {
    const y = labels[i]!;
    if (y < 0 || y >= numClasses) throw new Error(`label ${y} at index ${i} is outside 0..${numClasses - 1}`);
    byClass[y]!.push(i);
  };
  if (pool)
    Array.from(pool)
      .sort((a, b) => a - b)
      .forEach(add);
  else for (let i = 0; i < labels.length; i++) add(i);
  return byClass;
}

/** Per class round(fraction·n_c), at least one, so rare classes are never dropped. */
export function fractionQuota(fraction: number): (count: number) => number {
  return (count) => Math.max(1, Math.round(fraction * count));
}

/**
 * Picks, in every class, `quota(count of that class)` random indices to keep labeled; everything
 * else is unlabeled (the samplers, and the tuner's validation share of the labeled images). `pool` restricts both to some indices (the training folds of a k-fold split);
 * absent, every index takes part. Both lists come back sorted, so the split does not depend on
 * class order.
 */
export function stratifiedPick(
  labels: Int32Array,
  numClasses: number,
  rng: Rng,
  quota: (count: number, cls: number) => number,
  pool?: ArrayLike<number>,
): LabelSplit {
  const labeled: number[] = [];
  const unlabeled: number[] = [];
  indicesByClass(labels, numClasses, pool).forEach((idx, c) => {
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
