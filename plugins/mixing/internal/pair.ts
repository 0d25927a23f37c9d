import * as tf from '@tensorflow/tfjs';
import type { Batch, MixingContext } from '../../../src/contracts/training.ts';
import { smoothedTargets } from '../../../src/train/losses.ts';

/**
 * Mixup as in the authors' code: the batch is paired with its reverse (sample i with N−1−i) and
 * one λ ~ Beta(α, α) is drawn per batch. Returns the virtual images, their soft targets, and the
 * partner of every sample.
 */
export function mixPairs(batch: Batch, ctx: MixingContext, alpha: number) {
  const lambda = ctx.rng.beta(alpha, alpha);
  const partner = reversedIndex(batch.images.shape[0]);
  const partnerImages = tf.gather(batch.images, partner) as tf.Tensor4D;
  const partnerLabels = tf.gather(batch.labels, partner) as tf.Tensor1D;
  const mixed = tf.add(tf.mul(batch.images, lambda), tf.mul(partnerImages, 1 - lambda)) as tf.Tensor4D;
  const targets = tf.add(
    tf.mul(smoothedTargets(batch.labels, ctx.numClasses, ctx.labelSmoothing), lambda),
    tf.mul(smoothedTargets(partnerLabels, ctx.numClasses, ctx.labelSmoothing), 1 - lambda),
  ) as tf.Tensor2D;
  return { lambda, mixed, targets, partner, partnerImages };
}

/** Indices N−1 … 0. Gathering by them is much cheaper than tf.reverse on the JS backends. */
export function reversedIndex(n: number): tf.Tensor1D {
  return tf.tensor1d(
    Array.from({ length: n }, (_, i) => n - 1 - i),
    'int32',
  );
}
