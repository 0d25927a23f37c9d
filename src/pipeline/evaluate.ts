import * as tf from '@tensorflow/tfjs';
import type { Backbone } from '../contracts/backbone.ts';
import type { Split } from '../contracts/dataset.ts';
import { gatherImages } from '../train/batches.ts';

export interface Evaluation {
  /** Share of test images classified correctly, in [0, 1]. */
  readonly accuracy: number;
  /** Per-class recall (accuracy on that class's images); null for a class absent from the split. */
  readonly perClass: readonly (number | null)[];
  /** confusion[true][predicted] counts. */
  readonly confusion: number[][];
  readonly count: number;
}

/**
 * Accuracy, per-class accuracy and confusion matrix of a model on a split, or on the images of
 * the split at `subset` (a k-fold's held-out fold, a tuner's validation images).
 */
export function evaluate(model: Backbone, split: Split, imageSize: number, numClasses: number, batchSize: number, subset?: Int32Array): Evaluation {
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  const indices = subset ?? Int32Array.from({ length: split.size }, (_, i) => i);
  const count = indices.length;
  // An accuracy of nothing would print as a plausible 0 %: a split left empty is a bug upstream.
  if (count === 0)
    throw new Error('evaluate: no images to evaluate on (the split or the subset is empty); a cell needs test images, or a held-out fold, to be scored');
  for (let s = 0; s < count; s += batchSize) {
    const idx = indices.subarray(s, Math.min(count, s + batchSize));
    const predicted = tf.tidy(() => tf.argMax(model.logits(gatherImages(split.images, idx, imageSize), { training: false }), 1).dataSync());
    idx.forEach((i, k) => {
      confusion[split.labels[i]!]![predicted[k]!]! += 1;
    });
  }
  const correct = confusion.reduce((acc, row, c) => acc + row[c]!, 0);
  const perClass = confusion.map((row, c) => {
    const n = row.reduce((a, b) => a + b, 0);
    return n ? row[c]! / n : null;
  });
  return { accuracy: correct / count, perClass, confusion, count };
}
