import type * as tf from '@tensorflow/tfjs';
import { defineKind } from '../../../src/core/kinds.ts';

/**
 * The nested kinds FaceMix offers (its `kappa` and `loss` slots) and their contracts. The
 * registry learns them from facemix.ts's `kinds` export before it registers their plugins.
 */
export const facemixKinds = [
  defineKind('kappa', "FaceMix's κ ∈ [0, 1] from a pair of face images (pipeline.supervised.mixing.kappa)"),
  defineKind('mix-loss', "how FaceMix combines the virtual image's loss, the real images' losses and κ (pipeline.supervised.mixing.loss)"),
];

/**
 * A pair batch for κ: image i of `imagesA` is mixed with image i of `imagesB`.
 * Images are NHWC float32 in [0, 1]; boxes are [N, 4] pixel corners (x1, y1, x2, y2).
 */
export interface KappaInput {
  readonly imagesA: tf.Tensor4D;
  readonly imagesB: tf.Tensor4D;
  readonly boxesA: tf.Tensor2D;
  readonly boxesB: tf.Tensor2D;
}

/**
 * `kappa` plugins: κ ∈ [0, 1] weights the real images' losses in FaceMix: 0 when the two faces
 * are alike (the virtual image is trusted), 1 when they differ.
 */
export interface KappaMetric {
  readonly name: string;
  /** The raw similarity per pair (IoU, PSNR in dB, SSIM, FSIM); shape [N]. */
  similarity(input: KappaInput): tf.Tensor1D;
  /** κ per pair, mapped from the similarity into [0, 1]; shape [N]. */
  kappa(input: KappaInput): tf.Tensor1D;
}

/** `mix-loss` plugins: FaceMix's combination of per-sample losses (all shape [N]). */
export interface MixLoss {
  readonly name: string;
  /** Per-sample loss from the virtual-image loss L_v, the real-image losses L_i, L_j and κ. */
  combine(lv: tf.Tensor1D, li: tf.Tensor1D, lj: tf.Tensor1D, kappa: tf.Tensor1D): tf.Tensor1D;
}

declare module '../../../src/core/plugin.ts' {
  interface PluginContracts {
    kappa: KappaMetric;
    'mix-loss': MixLoss;
  }
}
