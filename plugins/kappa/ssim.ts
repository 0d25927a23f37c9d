import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import { choice, options, Type } from '../../src/core/schema.ts';
import type { KappaInput } from '../mixing/internal/kinds.ts';
import { contentKey, LruCache } from './internal/cache.ts';
import { ssimOfStats, ssimStats, type SsimStats } from './internal/ssim-core.ts';
import { checkImages, LUMA, oneMinusClipped } from './internal/tensors.ts';

export default definePlugin({
  kind: 'kappa',
  name: 'ssim',
  description:
    'κ = clip(1 − SSIM, 0, 1), SSIM of Wang et al. 2004 on the whole images (Gaussian window, map cropped and averaged as scikit-image does), on luminance by default; boxes unused',
  options: options(
    {
      window: Type.Integer({
        minimum: 3,
        maximum: 63,
        not: Type.Integer({ multipleOf: 2 }),
        default: 11,
        description:
          'Side of the Gaussian window (odd). 11 = what scikit-image derives from sigma 1.5 with truncate 3.5; the SSIM map is cropped by (window − 1)/2 pixels on each side before averaging. Images must be at least this large.',
      }),
      sigma: Type.Number({
        exclusiveMinimum: 0,
        maximum: 20,
        default: 1.5,
        description: 'Standard deviation (pixels) of the Gaussian weighting window.',
      }),
      k1: Type.Number({
        exclusiveMinimum: 0,
        maximum: 1,
        default: 0.01,
        description: 'C1 = (k1·data_range)² stabilises the luminance term.',
      }),
      k2: Type.Number({
        exclusiveMinimum: 0,
        maximum: 1,
        default: 0.03,
        description: 'C2 = (k2·data_range)² stabilises the contrast-structure term.',
      }),
      data_range: Type.Number({
        exclusiveMinimum: 0,
        default: 1.0,
        description: 'Dynamic range of the images (1 for [0, 1]); SSIM on x/255 with 1 equals SSIM on x with 255.',
      }),
      cache_mb: Type.Number({
        minimum: 0,
        default: 128,
        description: 'memory for per-image planes and local means, reused whenever the same image is compared again (0 disables)',
      }),
      color: choice(['luminance', 'channels'], {
        default: 'luminance',
        description:
          "'luminance': SSIM of Y = 0.299R + 0.587G + 0.114B; 'channels': SSIM of each colour channel separately, then their mean (scikit-image's channel_axis). Grey input is the same either way.",
      }),
    },
    { additionalProperties: false },
  ),
  create(options) {
    if (options.window % 2 !== 1) throw new Error(`kappa 'ssim': window must be odd, got ${options.window}`);
    const params = { window: options.window, sigma: options.sigma, k1: options.k1, k2: options.k2, dataRange: options.data_range };

    // Computed per pair in float64 on the CPU (see internal/ssim-core.ts for why); the interface
    // stays tensor in, tensor out. The planes compared (luminance, or each channel) and their
    // local means are kept per image, looked up by content: within a batch every image is both an
    // A and a B, so a pair then costs one filtering instead of five.
    interface Planes {
      readonly planes: Float64Array[];
      readonly stats: SsimStats[];
    }
    const cache = new LruCache<string, Planes>(options.cache_mb * 2 ** 20, (v) => v.planes.length * 3 * v.planes[0]!.byteLength);
    const ssim = (input: KappaInput): tf.Tensor1D => {
      checkImages('ssim', input);
      const [n, h, w, ch] = input.imagesA.shape;
      if (Math.min(h, w) < options.window) {
        throw new Error(`kappa 'ssim': images ${h}×${w} are smaller than the ${options.window}-pixel window`);
      }
      const a = input.imagesA.dataSync() as Float32Array;
      const b = input.imagesB.dataSync() as Float32Array;
      const size = h * w;
      const perChannel = options.color === 'channels' && ch > 1;
      const planesOf = (data: Float32Array, img: number): Planes => {
        const key = contentKey(data, img * size * ch, size * ch);
        const hit = cache.get(key);
        if (hit) return hit;
        const base = img * size * ch;
        const planes: Float64Array[] = [];
        if (!perChannel) {
          const x = new Float64Array(size);
          for (let i = 0; i < size; i++) {
            const o = base + i * ch;
            x[i] = ch === 1 ? data[o]! : LUMA[0] * data[o]! + LUMA[1] * data[o + 1]! + LUMA[2] * data[o + 2]!;
          }
          planes.push(x);
        } else {
          for (let c = 0; c < ch; c++) {
            const x = new Float64Array(size);
            for (let i = 0; i < size; i++) x[i] = data[base + i * ch + c]!;
            planes.push(x);
          }
        }
        const value = { planes, stats: planes.map((x) => ssimStats(x, h, w, params)) };
        cache.set(key, value);
        return value;
      };
      const out = new Float32Array(n);
      for (let img = 0; img < n; img++) {
        const pa = planesOf(a, img);
        const pb = planesOf(b, img);
        let total = 0;
        for (let c = 0; c < pa.planes.length; c++) total += ssimOfStats(pa.planes[c]!, pb.planes[c]!, pa.stats[c]!, pb.stats[c]!, h, w, params);
        out[img] = perChannel ? total / ch : total;
      }
      return tf.tensor1d(out, 'float32');
    };

    return {
      name: 'ssim',
      similarity: ssim,
      kappa(input: KappaInput): tf.Tensor1D {
        return tf.tidy(() => oneMinusClipped(ssim(input)));
      },
    };
  },
});
