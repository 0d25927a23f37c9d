import type { Rng } from '../core/rng.ts';

/**
 * `count` indices of `labels` keeping each class's share (largest remainder: every class gets
 * the floor of its share, the leftover goes to the largest fractions, lower class first on a
 * tie), picked at random within each class and returned sorted. null or ≥ all: every index.
 */
export function stratifiedSubset(labels: ArrayLike<number>, numClasses: number, count: number | null, rng: Rng): Int32Array {
  const n = labels.length;
  if (count === null || count >= n) return Int32Array.from({ length: n }, (_, i) => i);
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < n; i++) byClass[labels[i]!]!.push(i);
  const exact = byClass.map((idx) => (count * idx.length) / n);
  const quota = exact.map(Math.floor);
  let left = count - quota.reduce((a, b) => a + b, 0);
  const order = exact.map((e, c) => ({ c, frac: e - Math.floor(e) })).sort((a, b) => b.frac - a.frac || a.c - b.c);
  for (const { c } of order) {
    if (left === 0) break;
    if (quota[c]! < byClass[c]!.length) {
      quota[c]!++;
      left--;
    }
  }
  const picked: number[] = [];
  byClass.forEach((idx, c) => picked.push(...rng.shuffle(idx).slice(0, quota[c])));
  return Int32Array.from(picked.sort((a, b) => a - b));
}
