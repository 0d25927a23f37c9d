import * as tf from '@tensorflow/tfjs';
import type { Backbone } from '../../../src/contracts/backbone.ts';
import { crossEntropy } from '../../../src/train/losses.ts';
import { labelledGridPng, overlay } from './pictures.ts';

/**
 * FGSM (Goodfellow et al. 2015) confined to a region, as in the paper's Table 7: the region is the
 * pixels whose Grad-CAM value is above a threshold (0.3: the "emotion focused" region) or the rest
 * ("unfocused"). x' = clip(x + ε · sign(∇ₓ CE(f(x), y)) · M, 0, 1) with M the region's mask, x in
 * [0, 1] pixel units (ε = 0.02 is about 5 grey levels), the model in evaluation mode. Pixels
 * outside M are left exactly as they were, and |x' − x| ≤ ε everywhere.
 */

export type Region = 'inside' | 'outside';

/** sign(∇ₓ Σ_i CE(f(x_i), y_i)) [B, H, W, C]: each image's own gradient sign (the loss sums over the batch). */
export function gradientSign(model: Backbone, images: tf.Tensor4D, labels: Int32Array): tf.Tensor4D {
  return tf.tidy(() => {
    const y = tf.tensor1d(labels, 'int32');
    const grad = tf.grad((x: tf.Tensor) => tf.sum(crossEntropy(model.logits(x as tf.Tensor4D, { training: false }), y, model.numClasses, 0)))(images);
    return tf.sign(grad) as tf.Tensor4D;
  });
}

/** The mask [B, H, W, 1] of a region from CAM maps [B, H, W] in [0, 1]. */
export function regionMask(maps: tf.Tensor3D, threshold: number, region: Region): tf.Tensor4D {
  return tf.tidy(() => {
    const focused = tf.cast(tf.greater(maps, threshold), 'float32');
    return tf.expandDims(region === 'inside' ? focused : tf.sub(1, focused), 3) as tf.Tensor4D;
  });
}

/** x' = clip(x + ε · sign · mask, 0, 1). */
export function perturb(images: tf.Tensor4D, sign: tf.Tensor4D, mask: tf.Tensor4D, epsilon: number): tf.Tensor4D {
  if (!(epsilon >= 0)) throw new Error(`fgsm: ε must be ≥ 0, got ${epsilon}`);
  return tf.tidy(() => tf.clipByValue(tf.add(images, tf.mul(tf.mul(sign, mask), epsilon)), 0, 1) as tf.Tensor4D);
}

export interface RegionAttack {
  readonly epsilons: readonly number[];
  readonly threshold: number;
  /** Accuracy in [0, 1] per ε with the attack inside the focused region. */
  readonly inside: readonly number[];
  /** Accuracy per ε with the attack outside it. */
  readonly outside: readonly number[];
  /** Mean share of pixels in the focused region. */
  readonly focusedShare: number;
  readonly count: number;
}

/**
 * Accuracy of `model` on `count` images (NHWC [0, 1] values, `labels`) attacked at every ε in each
 * region, given their CAM maps [count, H, W]. The gradient is taken once per batch at the clean
 * images; every ε reuses its sign.
 */
export function attackRegions(
  model: Backbone,
  images: Float32Array,
  labels: Int32Array,
  maps: Float32Array,
  count: number,
  options: { epsilons: readonly number[]; threshold: number; batchSize: number },
): RegionAttack {
  const size = model.imageSize;
  const px = size * size * model.channels;
  const correct = { inside: options.epsilons.map(() => 0), outside: options.epsilons.map(() => 0) };
  let focused = 0;
  for (let s = 0; s < count; s += options.batchSize) {
    const n = Math.min(options.batchSize, count - s);
    const y = labels.subarray(s, s + n);
    tf.tidy(() => {
      const x = tf.tensor4d(images.subarray(s * px, (s + n) * px), [n, size, size, model.channels]);
      const cams = tf.tensor3d(maps.subarray(s * size * size, (s + n) * size * size), [n, size, size]);
      const sign = gradientSign(model, x, y);
      for (const region of ['inside', 'outside'] as const) {
        const mask = regionMask(cams, options.threshold, region);
        if (region === 'inside') focused += tf.sum(mask).dataSync()[0]!;
        options.epsilons.forEach((eps, k) => {
          const predicted = tf.tidy(() => tf.argMax(model.logits(perturb(x, sign, mask, eps), { training: false }), 1).dataSync());
          for (let i = 0; i < n; i++) if (predicted[i] === y[i]) correct[region][k]! += 1;
        });
      }
    });
  }
  return {
    epsilons: options.epsilons,
    threshold: options.threshold,
    inside: correct.inside.map((c) => c / count),
    outside: correct.outside.map((c) => c / count),
    focusedShare: focused / (count * size * size),
    count,
  };
}

/**
 * The paper's Fig. 9 strip: for each of the first `count` images two rows, the attack inside the
 * focused region and outside it: the image, its CAM, the region, then the attacked image at each ε > 0.
 */
export async function attackStripPng(
  model: Backbone,
  images: Float32Array,
  labels: Int32Array,
  maps: Float32Array,
  count: number,
  options: { epsilons: readonly number[]; threshold: number },
): Promise<Uint8Array> {
  const size = model.imageSize;
  const eps = options.epsilons.filter((e) => e > 0);
  const rows: tf.Tensor4D[] = [];
  const rowLabels: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      tf.tidy(() => {
        const x = tf.tensor4d(images.subarray(i * size * size * model.channels, (i + 1) * size * size * model.channels), [1, size, size, model.channels]);
        const cam = tf.tensor3d(maps.subarray(i * size * size, (i + 1) * size * size), [1, size, size]);
        const sign = gradientSign(model, x, labels.subarray(i, i + 1));
        for (const region of ['inside', 'outside'] as const) {
          const mask = regionMask(cam, options.threshold, region);
          // The region at full brightness, the rest dimmed.
          const shown = tf.mul(x, tf.add(tf.mul(mask, 0.75), 0.25)) as tf.Tensor4D;
          const tiles = [x, overlay(x, cam), shown, ...eps.map((e) => perturb(x, sign, mask, e))];
          rows.push(
            tf.keep(
              tf.concat(
                tiles.map((t) => (t.shape[3] === 3 ? t : tf.tile(t, [1, 1, 1, 3]))),
                0,
              ) as tf.Tensor4D,
            ),
          );
          rowLabels.push(`${i + 1}: ${region === 'inside' ? 'focused' : 'unfocused'}`);
        }
      });
    }
    const columns = ['image', 'Grad-CAM', `region (CAM > ${options.threshold})`, ...eps.map((e) => `ε = ${e}`)];
    return await labelledGridPng(rows, rowLabels, columns, 'FGSM inside and outside the Grad-CAM focused region');
  } finally {
    tf.dispose(rows);
  }
}
