import * as tf from '@tensorflow/tfjs';
import type { TokenBackbone } from '../../../src/contracts/backbone.ts';
import { labelledGridPng, overlay } from './pictures.ts';

/**
 * Grad-CAM (Selvaraju et al. 2017) for a ViT, as the paper's Fig. 8 and pytorch-grad-cam's ViT
 * recipe compute it: the activations are the patch tokens the last transformer block receives
 * (with the class token pooled, the last block's output patch tokens do not reach the score; its
 * input ones do, through its attention). For class c with score y_c (the logit):
 *   w_d = mean over patches n of ∂y_c/∂A[n, d]      (channel weights by averaging the gradients)
 *   cam[n] = ReLU(Σ_d w_d · A[n, d])                  (one value per patch, on the patch grid)
 * then each image's map is scaled to [0, 1] (x − min) / (max − min + 1e-7) and resized to the
 * image bilinearly (half-pixel centres, as OpenCV's INTER_LINEAR in pytorch-grad-cam).
 */
export interface GradCam {
  /** [B, gridSize, gridSize], normalised to [0, 1] per image. */
  readonly grid: tf.Tensor3D;
  /** [B, imageSize, imageSize], the grid resized to the image. */
  readonly maps: tf.Tensor3D;
  /** The class each map explains. */
  readonly classes: Int32Array;
  /** The model's prediction for each image. */
  readonly predicted: Int32Array;
}

const EPS = 1e-7;

/**
 * Computes the maps of `images` [B, H, W, C] in [0, 1] for `classes` (default: the predicted
 * class), in evaluation mode. The caller disposes `grid` and `maps`.
 */
export function vitGradCam(model: TokenBackbone, images: tf.Tensor4D, classes?: Int32Array): GradCam {
  if (model.depth < 1) throw new Error('gradcam: the backbone has no transformer block');
  const last = model.depth - 1;
  const b = images.shape[0];
  const g = model.gridSize;
  const start = model.hasClassToken ? 1 : 0;
  const [grid, predicted, chosen] = tf.tidy(() => {
    const tokens = model.encodeRange(model.withClassToken(model.embed(model.patchify(images))), 0, last);
    const head = (a: tf.Tensor3D) => model.classify(model.pool(model.encodeRange(a, last, model.depth)));
    const logits = head(tokens);
    const pred = tf.argMax(logits, 1).dataSync() as Int32Array;
    const target = classes ?? pred;
    if (target.length !== b) throw new Error(`gradcam: ${target.length} classes given for ${b} images`);
    const oneHot = tf.oneHot(tf.tensor1d(target, 'int32'), model.numClasses);
    // Σ over the batch of each image's own score: image i's score depends on its tokens alone.
    const grads = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(head(a as tf.Tensor3D), oneHot)))(tokens) as tf.Tensor3D;
    const n = model.numPatches;
    const d = model.dim;
    const acts = tf.slice(tokens, [0, start, 0], [b, n, d]);
    const weights = tf.mean(tf.slice(grads, [0, start, 0], [b, n, d]), 1, true); // [B, 1, D]
    const cam = tf.relu(tf.sum(tf.mul(acts, weights), 2)); // [B, N]
    const lo = tf.min(cam, 1, true);
    const scaled = tf.div(tf.sub(cam, lo), tf.add(tf.sub(tf.max(cam, 1, true), lo), EPS));
    return [tf.reshape(scaled, [b, g, g]) as tf.Tensor3D, pred, Int32Array.from(target)];
  }) as [tf.Tensor3D, Int32Array, Int32Array];
  const maps = tf.tidy(() => {
    const size = model.imageSize;
    const resized = tf.image.resizeBilinear(tf.expandDims(grid, 3) as tf.Tensor4D, [size, size], false, true);
    return tf.reshape(resized, [b, size, size]) as tf.Tensor3D;
  });
  return { grid, maps, classes: chosen, predicted };
}

/**
 * Maps for many images, in batches, of the predicted class or of `classes` (one per image); returns
 * them as one Float32Array [count, H, W] and the predictions.
 */
export function gradCamAll(
  model: TokenBackbone,
  images: Float32Array,
  count: number,
  batchSize: number,
  classes?: Int32Array,
): { maps: Float32Array; predicted: Int32Array } {
  const size = model.imageSize;
  const px = size * size * model.channels;
  const maps = new Float32Array(count * size * size);
  const predicted = new Int32Array(count);
  for (let s = 0; s < count; s += batchSize) {
    const n = Math.min(batchSize, count - s);
    const batch = tf.tensor4d(images.subarray(s * px, (s + n) * px), [n, size, size, model.channels]);
    const cam = vitGradCam(model, batch, classes?.subarray(s, s + n));
    maps.set(cam.maps.dataSync(), s * size * size);
    predicted.set(cam.predicted, s);
    tf.dispose([batch, cam.grid, cam.maps]);
  }
  return { maps, predicted };
}

export interface GradCamReport {
  /** Every image's map [count, H, W]. */
  readonly maps: Float32Array;
  readonly predicted: Int32Array;
  /** Mean map per class over the images of that class [classes, H, W]; a class without images is zeros. */
  readonly meanPerClass: Float32Array;
  /** Images per class. */
  readonly counts: readonly number[];
  /** Rows = classes; the first `perClass` images of each class with their maps, then the class's mean map. */
  readonly picture: Uint8Array;
}

/**
 * Grad-CAM of a whole split (of the predicted classes, or with `target: 'label'` of the true
 * ones), the mean map per true class and the picture.
 */
export async function gradCamReport(
  model: TokenBackbone,
  split: { images: Float32Array; labels: Int32Array; size: number },
  classNames: readonly string[],
  options: { perClass: number; batchSize: number; target?: 'predicted' | 'label' },
): Promise<GradCamReport> {
  const size = model.imageSize;
  const hw = size * size;
  const { maps, predicted } = gradCamAll(model, split.images, split.size, options.batchSize, options.target === 'label' ? split.labels : undefined);
  const c = classNames.length;
  const meanPerClass = new Float32Array(c * hw);
  const counts = new Array<number>(c).fill(0);
  for (let i = 0; i < split.size; i++) {
    const k = split.labels[i]!;
    counts[k]! += 1;
    const m = maps.subarray(i * hw, (i + 1) * hw);
    const acc = meanPerClass.subarray(k * hw, (k + 1) * hw);
    for (let j = 0; j < hw; j++) acc[j]! += m[j]!;
  }
  counts.forEach((n, k) => {
    if (n > 0) for (let j = 0; j < hw; j++) meanPerClass[k * hw + j]! /= n;
  });
  const picture = await gradCamPicture(model, split, maps, meanPerClass, classNames, options.perClass, options.target ?? 'predicted');
  return { maps, predicted, meanPerClass, counts, picture };
}

async function gradCamPicture(
  model: TokenBackbone,
  split: { images: Float32Array; labels: Int32Array; size: number },
  maps: Float32Array,
  meanPerClass: Float32Array,
  classNames: readonly string[],
  perClass: number,
  target: 'predicted' | 'label',
): Promise<Uint8Array> {
  const size = model.imageSize;
  const hw = size * size;
  const px = hw * model.channels;
  const rows: tf.Tensor4D[] = [];
  try {
    classNames.forEach((_, k) => {
      const chosen: number[] = [];
      for (let i = 0; i < split.size && chosen.length < perClass; i++) if (split.labels[i] === k) chosen.push(i);
      rows.push(
        tf.tidy(() => {
          const blank = tf.ones([1, size, size, 3]);
          const images = chosen.map((i) => tf.tensor4d(split.images.subarray(i * px, (i + 1) * px), [1, size, size, model.channels]));
          const cams = chosen.map((i) => tf.tensor3d(maps.subarray(i * hw, (i + 1) * hw), [1, size, size]));
          const tiles = images.map((img, j) => overlay(img, cams[j]!));
          while (tiles.length < perClass) tiles.push(blank as tf.Tensor4D);
          // The class's mean map over its mean image.
          const meanImage = images.length ? tf.mean(tf.concat(images, 0), 0, true) : blank;
          tiles.push(overlay(meanImage as tf.Tensor4D, tf.tensor3d(meanPerClass.subarray(k * hw, (k + 1) * hw), [1, size, size])));
          return tf.concat(tiles, 0) as tf.Tensor4D;
        }),
      );
    });
    const columns = [...Array.from({ length: perClass }, (_, j) => `image ${j + 1}`), 'class mean'];
    return await labelledGridPng(rows, classNames, columns, `Grad-CAM (${target === 'label' ? 'true' : 'predicted'} class) on the last block’s tokens`);
  } finally {
    tf.dispose(rows);
  }
}
