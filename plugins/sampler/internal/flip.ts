import type { Rng } from '../../../src/core/rng.ts';

/**
 * Symmetric label noise: exactly round(ratio·n) of the n `labeled` images get a label drawn
 * uniformly from the other numClasses − 1 classes (never their own). `order` decides which images
 * are flipped and `draw` their new classes, each flipped image taking the next draw in order, so
 * with the same streams the images flipped at a lower ratio are flipped, to the same classes, at
 * every higher one.
 */
export function flipLabels(
  labels: Int32Array,
  labeled: Int32Array,
  numClasses: number,
  ratio: number,
  order: Rng,
  draw: Rng,
): { labels: Int32Array; flipped: Int32Array } {
  const count = Math.round(ratio * labeled.length);
  if (count > 0 && numClasses < 2) throw new Error('label noise needs at least two classes');
  const out = Int32Array.from(labels);
  const picked = order.shuffle(Int32Array.from(labeled).sort()).subarray(0, count);
  for (const i of picked) out[i] = (labels[i]! + 1 + draw.int(numClasses - 1)) % numClasses;
  return { labels: out, flipped: Int32Array.from(picked).sort() };
}
