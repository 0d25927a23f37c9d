import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import { choice, options, Type } from '../../src/core/schema.ts';
import weak, { weakOptions } from './weak.ts';
import { applyDraws, drawOps, type RandAugmentSettings } from './internal/randaugment.ts';

/** timm's fill for the authors' mean: round(255 · mean) per channel, in [0, 1] units. */
export const FACE_FILL = [0.588, 0.459, 0.402].map((m) => Math.min(255, Math.round(255 * m)) / 255);

export default definePlugin({
  kind: 'augment',
  name: 'strong',
  description: 'random resized crop + horizontal flip + RandAugment (N ops of timm’s 15 or torchvision’s 14 at magnitude M)',
  options: options({
    ...weakOptions,
    ops: Type.Integer({ minimum: 0, maximum: 15, default: 2, description: 'RandAugment N: operations per image' }),
    op_set: choice(['timm', 'torchvision'], {
      default: 'timm',
      description:
        'the operations drawn from: timm’s 15 (the authors’ rand-m9-mstd0.5-inc1: with Invert and SolarizeAdd, no Identity) or torchvision’s 14 (the RandAugment paper’s, with Identity)',
    }),
    magnitude: Type.Number({
      minimum: 0,
      maximum: 30,
      default: 9,
      description: 'RandAugment M; an operation is at full strength at M = magnitude_max (timm: 10, so the authors’ M 9 is 90 %)',
    }),
    magnitude_std: Type.Number({ minimum: 0, default: 0.5, description: 'noise on M per image (the authors: 0.5)' }),
    magnitude_max: Type.Number({
      exclusiveMinimum: 0,
      maximum: 30,
      default: 10,
      description: 'M of full strength; the noisy M is clipped to [0, magnitude_max] (timm: 10; torchvision’s 31 bins: 30)',
    }),
    prob: Type.Number({ minimum: 0, maximum: 1, default: 0.5, description: 'probability that each drawn operation is applied (timm: 0.5; torchvision: 1)' }),
    increasing: Type.Boolean({
      default: true,
      description: 'timm’s increasing variants (the authors’ inc1): Posterize, Solarize and the enhancements grow stronger with M',
    }),
    translate: Type.Number({ minimum: 0, maximum: 1, default: 0.45, description: 'largest translation as a share of the image side (timm: 0.45)' }),
    fill: Type.Array(Type.Number({ minimum: 0, maximum: 1 }), {
      minItems: 1,
      default: FACE_FILL,
      description:
        'per-channel colour of pixels uncovered by rotation, shear and translation (timm: the transform’s mean in 8 bits; the authors’ face mean 0.588, 0.459, 0.402 → 150, 117, 103 / 255)',
    }),
  }),
  create(o, ctx) {
    const crop = weak.create({ scale: o.scale, ratio: o.ratio, flip: o.flip }, ctx);
    const settings: RandAugmentSettings = {
      ops: o.ops,
      magnitude: o.magnitude,
      magnitudeStd: o.magnitude_std,
      magnitudeMax: o.magnitude_max,
      prob: o.prob,
      opSet: o.op_set,
      increasing: o.increasing,
      translate: o.translate,
      fill: o.fill,
    };
    return {
      name: 'strong',
      apply(images, boxes, rng) {
        const cropped = crop.apply(images, boxes, rng);
        try {
          const draws = drawOps(images.shape[0], settings, rng);
          const out = applyDraws(cropped.images, cropped.boxes.dataSync() as Float32Array, draws, settings.fill);
          return { images: out.images, boxes: tf.tensor2d(out.boxes, [images.shape[0], 4]) };
        } finally {
          cropped.images.dispose();
          cropped.boxes.dispose();
        }
      },
    };
  },
});
