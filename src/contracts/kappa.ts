import type * as tf from '@tensorflow/tfjs';

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
 * κ ∈ [0, 1] weights the real images' losses in FaceMix: 0 when the two faces are alike
 * (the virtual image is trusted), 1 when they differ.
 */
export interface KappaMetric {
  readonly name: string;
  /** The raw similarity per pair (IoU, PSNR in dB, SSIM, FSIM); shape [N]. */
  similarity(input: KappaInput): tf.Tensor1D;
  /** κ per pair, mapped from the similarity into [0, 1]; shape [N]. */
  kappa(input: KappaInput): tf.Tensor1D;
}
