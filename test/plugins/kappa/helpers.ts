import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { fileURLToPath } from 'node:url';
import type { KappaInput, KappaMetric } from '../../../plugins/mixing/internal/kinds.ts';
import type { PluginContext } from '../../../src/core/plugin.ts';

const fixtures = fileURLToPath(new URL('../../fixtures/iqa/', import.meta.url));

/** κ plugins have no nested slots; their context needs only a seed and a scale. */
export const ctx: PluginContext = {
  seed: 0,
  scale: 'smoke',
  recipeDir: '.',
  resolve() {
    throw new Error('no nested slots here');
  },
};

/** A reference image from test/fixtures/iqa, decoded by sharp into [1, H, W, C] in [0, 1]. */
export async function loadFixture(name: string): Promise<tf.Tensor4D> {
  const { data, info } = await sharp(fixtures + name)
    .raw()
    .toBuffer({ resolveWithObject: true });
  const values = Float32Array.from(data, (v) => v / 255);
  return tf.tensor4d(values, [1, info.height, info.width, info.channels]);
}

/** A pair batch for image metrics: the boxes are not looked at. */
export function imagePairs(a: tf.Tensor4D, b: tf.Tensor4D): KappaInput {
  const n = a.shape[0];
  return { imagesA: a, imagesB: b, boxesA: tf.zeros([n, 4]) as tf.Tensor2D, boxesB: tf.zeros([n, 4]) as tf.Tensor2D };
}

/** Similarity and κ of every pair, as plain numbers; frees what it made. */
export function measure(metric: KappaMetric, input: KappaInput): { sim: number[]; kappa: number[] } {
  const s = metric.similarity(input);
  const k = metric.kappa(input);
  const out = { sim: Array.from(s.dataSync()), kappa: Array.from(k.dataSync()) };
  tf.dispose([s, k, input.boxesA, input.boxesB]);
  return out;
}

/** Deterministic smooth-plus-texture test image, so the small-image tests need no random seed. */
export function pattern(size: number, phase: number, channels = 3): tf.Tensor4D {
  const v = new Float32Array(size * size * channels);
  for (let r = 0; r < size; r++)
    for (let c = 0; c < size; c++)
      for (let ch = 0; ch < channels; ch++)
        v[(r * size + c) * channels + ch] = 0.5 + 0.3 * Math.sin((r + phase) / 5 + ch) * Math.cos(c / 7) + 0.15 * Math.sin((r * c + phase * 13) / 11);
  return tf.tensor4d(v, [1, size, size, channels]);
}
