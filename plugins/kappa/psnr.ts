import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import { choice, options, Type } from '../../src/core/schema.ts';
import type { KappaInput } from '../mixing/internal/kinds.ts';
import { checkImages, luminance } from './internal/tensors.ts';

export default definePlugin({
  kind: 'kappa',
  name: 'psnr',
  description:
    'κ from PSNR of the two whole images (boxes unused): κ = clip((max_db − PSNR) / (max_db − min_db), 0, 1), so identical images (PSNR ∞) give 0 and PSNR ≤ min_db gives 1',
  options: options(
    {
      data_range: Type.Number({
        exclusiveMinimum: 0,
        default: 1.0,
        description: 'Peak signal value R in PSNR = 10·log10(R² / MSE); 1 for images in [0, 1].',
      }),
      color: choice(['channels', 'luminance'], {
        default: 'channels',
        description:
          "Which values the MSE averages: 'channels' = every pixel of every channel (scikit-image's peak_signal_noise_ratio on an RGB array), 'luminance' = Y = 0.299R + 0.587G + 0.114B only.",
      }),
      min_db: Type.Number({
        minimum: 0,
        default: 10,
        description:
          'PSNR (dB) at and below which κ = 1. 10 dB: unrelated images are near it (two independent uniform-noise images give about 7.8 dB, two different aligned faces typically 12–20 dB).',
      }),
      max_db: Type.Number({
        minimum: 0,
        default: 40,
        description:
          'PSNR (dB) at and above which κ = 0; must exceed min_db. 40 dB: differences above it are invisible (a high-quality JPEG of the same face), so such pairs count as the same image.',
      }),
    },
    { additionalProperties: false },
  ),
  create(options) {
    const { data_range, color, min_db, max_db } = options;
    if (!(max_db > min_db)) throw new Error(`kappa 'psnr': max_db (${max_db}) must be greater than min_db (${min_db})`);

    const psnr = (input: KappaInput): tf.Tensor1D =>
      tf.tidy(() => {
        const a = color === 'luminance' ? luminance(input.imagesA) : input.imagesA;
        const b = color === 'luminance' ? luminance(input.imagesB) : input.imagesB;
        // Reduced one axis at a time: backends that accumulate a long float32 sum in one pass
        // (wasm) are otherwise off by ~0.005 dB on a 512×512×3 image.
        const mse = tf.mean(tf.mean(tf.mean(tf.squaredDifference(a, b), 3), 2), 1);
        // MSE 0 gives R²/0 = ∞ and so PSNR ∞, the scikit-image value for identical images.
        return tf.mul(10, tf.div(tf.log(tf.div(data_range * data_range, mse)), Math.LN10)) as tf.Tensor1D;
      });

    return {
      name: 'psnr',
      similarity(input: KappaInput): tf.Tensor1D {
        checkImages('psnr', input);
        return psnr(input);
      },
      kappa(input: KappaInput): tf.Tensor1D {
        checkImages('psnr', input);
        return tf.tidy(() => tf.clipByValue(tf.div(tf.sub(max_db, psnr(input)), max_db - min_db), 0, 1) as tf.Tensor1D);
      },
    };
  },
});
