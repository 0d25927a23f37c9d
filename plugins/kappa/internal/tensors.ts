import * as tf from '@tensorflow/tfjs';
import type { KappaInput } from '../../mixing/internal/kinds.ts';

/** Rec. 601 luma weights, as MATLAB's rgb2gray and FeatureSIM.m use. */
export const LUMA = [0.299, 0.587, 0.114] as const;

/** Throws unless the two image batches are NHWC, equal in shape, with 1 or 3 channels. */
export function checkImages(metric: string, input: KappaInput): void {
  const a = input.imagesA.shape;
  const b = input.imagesB.shape;
  if (a.length !== 4 || b.length !== 4) {
    throw new Error(`kappa '${metric}': images must be NHWC rank-4 tensors, got [${a}] and [${b}]`);
  }
  if (a.some((d, i) => d !== b[i])) {
    throw new Error(`kappa '${metric}': imagesA [${a}] and imagesB [${b}] differ in shape`);
  }
  if (a[3] !== 1 && a[3] !== 3) {
    throw new Error(`kappa '${metric}': images must have 1 or 3 channels, got ${a[3]}`);
  }
}

/** Throws unless both box tensors are [N, 4] with the same N. */
export function checkBoxes(metric: string, input: KappaInput): void {
  const a = input.boxesA.shape;
  const b = input.boxesB.shape;
  if (a.length !== 2 || b.length !== 2 || a[1] !== 4 || b[1] !== 4 || a[0] !== b[0]) {
    throw new Error(`kappa '${metric}': boxes must be two [N, 4] tensors with the same N, got [${a}] and [${b}]`);
  }
}

/** [N, H, W, 1] luminance Y = 0.299 R + 0.587 G + 0.114 B (grey input is returned as is). */
export function luminance(images: tf.Tensor4D): tf.Tensor4D {
  if (images.shape[3] === 1) return images;
  return tf.tidy(() => tf.sum(tf.mul(images, tf.tensor1d([...LUMA])), 3, true) as tf.Tensor4D);
}

/** κ = clip(1 − similarity, 0, 1), the mapping of the bounded similarities (IoU, SSIM, FSIM). */
export function oneMinusClipped(similarity: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => tf.clipByValue(tf.sub(1, similarity), 0, 1) as tf.Tensor1D);
}
