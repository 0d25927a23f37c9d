import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import { options, Type } from '../../src/core/schema.ts';
import weak, { weakOptions } from './weak.ts';
import { applyDraws, drawOps, type RandAugmentSettings } from './internal/randaugment.ts';

export default definePlugin({
  kind: 'augment',
  name: 'strong',
  description: 'random resized crop + horizontal flip + RandAugment (N ops of the standard 14 at magnitude M)',
  options: options({
    ...weakOptions,
    ops: Type.Integer({ minimum: 0, maximum: 14, default: 2, description: 'RandAugment N: operations per image' }),
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
      default: [0.485, 0.456, 0.406],
      description: 'per-channel colour of pixels uncovered by rotation, shear and translation (timm: the ImageNet mean)',
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
