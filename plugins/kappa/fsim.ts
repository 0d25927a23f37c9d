import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import { choice, nullable, options, Type } from '../../src/core/schema.ts';
import type { KappaInput } from '../mixing/internal/kinds.ts';
import { fsimCompare, fsimFeatures, type FsimConfig, type FsimFeatures, type Planes } from './internal/fsim-core.ts';
import { contentKey, LruCache } from './internal/cache.ts';
import type { PhaseCongruencyParams } from './internal/phasecong.ts';
import { checkImages, oneMinusClipped } from './internal/tensors.ts';

type Preset = 'reference' | 'ssfer-port';

const PRESETS: Record<Preset, PhaseCongruencyParams> = {
  // FeatureSIM.m's embedded phasecong2: reproduces the published FSIM values.
  reference: {
    algorithm: 'phasecong2',
    nscale: 4,
    norient: 4,
    minWaveLength: 6,
    mult: 2,
    sigmaOnf: 0.55,
    dThetaOnSigma: 1.2,
    k: 2.0,
    cutOff: 0.5,
    g: 10,
    epsilon: 1e-4,
  },
  // The SSFER authors' port: phasecong3-style (phasepack) routine with its default parameters.
  'ssfer-port': {
    algorithm: 'phasecong3',
    nscale: 5,
    norient: 6,
    minWaveLength: 3,
    mult: 2.1,
    sigmaOnf: 0.55,
    dThetaOnSigma: 1.2,
    k: 2.0,
    cutOff: 0.5,
    g: 10,
    epsilon: 1e-4,
  },
};

/** A phase-congruency number that may be left to the preset (null). */
function override(
  description: string,
  type: 'number' | 'integer',
  limits: { minimum?: number; maximum?: number; exclusiveMinimum?: number; exclusiveMaximum?: number },
) {
  const number = type === 'integer' ? Type.Integer(limits) : Type.Number(limits);
  return nullable(number, { default: null, description: `${description} null = the preset's value.` });
}

export default definePlugin({
  kind: 'kappa',
  name: 'fsim',
  description:
    'κ = clip(1 − FSIM, 0, 1), FSIM of Zhang et al. 2011 (phase congruency + Scharr gradient on luminance, FSIMc with chromatic: true), on the whole images as FeatureSIM.m computes it; boxes unused',
  options: options(
    {
      preset: choice(['reference', 'ssfer-port'], {
        default: 'reference',
        description:
          "Phase-congruency settings. 'reference': FeatureSIM.m's phasecong2 (nscale 4, norient 4, min_wavelength 6, mult 2, sigma_onf 0.55, dtheta_on_sigma 1.2, k 2, epsilon 1e-4), which reproduces the published FSIM values. 'ssfer-port': the SSFER authors' settings (nscale 5, norient 6, min_wavelength 3, mult 2.1, sigma_onf 0.55, k 2, cut_off 0.5, g 10) with Kovesi's phasecong3 routine (cosine angular spread, frequency-spread weighting), PC = sum of the per-orientation PC maps; the port itself is not published as source, so this is a reconstruction.",
      }),
      cache_mb: Type.Number({
        minimum: 0,
        default: 256,
        description: 'memory for per-image phase congruency and gradient maps, reused whenever the same image is compared again (0 disables)',
      }),
      chromatic: Type.Boolean({
        default: false,
        description:
          'false: FSIM on luminance Y only; true: FSIMc, which also weighs the I and Q chrominance similarities with exponent lambda. Grey images give the same value either way.',
      }),
      data_range: Type.Number({
        exclusiveMinimum: 0,
        default: 1.0,
        description: 'Input value of white; images are rescaled so that it becomes 255, the scale the constants t2, t3, t4 are defined on.',
      }),
      downsample: Type.Integer({
        minimum: 0,
        maximum: 16,
        default: 0,
        description:
          '0: automatic factor F = max(1, round(min(H, W) / 256)) as FeatureSIM.m (a 224-pixel face is not downsampled); n ≥ 1: that factor. Downsampling is an F×F average (zero-padded, MATLAB conv2 "same") sampled every F-th pixel.',
      }),
      nscale: override('Number of log-Gabor scales.', 'integer', { minimum: 2, maximum: 8 }),
      norient: override('Number of filter orientations.', 'integer', { minimum: 1, maximum: 16 }),
      min_wavelength: override('Wavelength (pixels) of the smallest-scale filter.', 'number', { exclusiveMinimum: 0 }),
      mult: override('Ratio between the wavelengths of successive scales.', 'number', { exclusiveMinimum: 1 }),
      sigma_onf: override('Bandwidth of the log-Gabor filters: σ of the log-Gaussian over the centre frequency.', 'number', {
        exclusiveMinimum: 0,
        exclusiveMaximum: 1,
      }),
      dtheta_on_sigma: override('phasecong2 only: angular spacing of the filters over the σ of the angular Gaussian.', 'number', { exclusiveMinimum: 0 }),
      k: override('Noise threshold: standard deviations of the noise energy above its mean.', 'number', { minimum: 0 }),
      cut_off: override('phasecong3 only: frequency-spread fraction below which phase congruency is penalised.', 'number', { minimum: 0, maximum: 1 }),
      g: override('phasecong3 only: sharpness of the frequency-spread sigmoid.', 'number', { minimum: 0 }),
      epsilon: override('Guards divisions by zero in the phase-congruency computation.', 'number', { exclusiveMinimum: 0 }),
      t1: Type.Number({ exclusiveMinimum: 0, default: 0.85, description: 'Stabilising constant of the phase-congruency similarity.' }),
      t2: Type.Number({ exclusiveMinimum: 0, default: 160, description: 'Stabilising constant of the gradient-magnitude similarity, on 0–255 data.' }),
      t3: Type.Number({ exclusiveMinimum: 0, default: 200, description: 'FSIMc: stabilising constant of the I-channel similarity, on 0–255 data.' }),
      t4: Type.Number({ exclusiveMinimum: 0, default: 200, description: 'FSIMc: stabilising constant of the Q-channel similarity, on 0–255 data.' }),
      lambda: Type.Number({ minimum: 0, maximum: 1, default: 0.03, description: 'FSIMc: exponent of the chrominance similarity.' }),
    },
    { additionalProperties: false },
  ),
  create(options) {
    const base = PRESETS[options.preset];
    const pick = (v: number | null, d: number) => (v === null || v === undefined ? d : v);
    const pc: PhaseCongruencyParams = {
      algorithm: base.algorithm,
      nscale: pick(options.nscale, base.nscale),
      norient: pick(options.norient, base.norient),
      minWaveLength: pick(options.min_wavelength, base.minWaveLength),
      mult: pick(options.mult, base.mult),
      sigmaOnf: pick(options.sigma_onf, base.sigmaOnf),
      dThetaOnSigma: pick(options.dtheta_on_sigma, base.dThetaOnSigma),
      k: pick(options.k, base.k),
      cutOff: pick(options.cut_off, base.cutOff),
      g: pick(options.g, base.g),
      epsilon: pick(options.epsilon, base.epsilon),
    };
    const cfg: FsimConfig = {
      pc,
      downsample: options.downsample,
      t1: options.t1,
      t2: options.t2,
      t3: options.t3,
      t4: options.t4,
      lambda: options.lambda,
    };
    const scale = 255 / options.data_range;

    // Phase congruency needs FFTs, which the tfjs backends here lack, so the pairs are read back
    // and computed in float64 on the CPU; the interface stays tensor in, tensor out.
    const cache = new LruCache<string, FsimFeatures>(options.cache_mb * 2 ** 20, (f) => (f.pc.byteLength + f.g.byteLength) * (f.i ? 2 : 1));
    const fsim = (input: KappaInput): tf.Tensor1D => {
      checkImages('fsim', input);
      const [n, h, w, ch] = input.imagesA.shape;
      const a = input.imagesA.dataSync();
      const b = input.imagesB.dataSync();
      const plane = (data: ArrayLike<number>, img: number): Planes => {
        const channels: Float64Array[] = [];
        const size = h * w;
        const offset = img * size * ch;
        for (let c = 0; c < ch; c++) {
          const p = new Float64Array(size);
          for (let i = 0; i < size; i++) p[i] = data[offset + i * ch + c]! * scale;
          channels.push(p);
        }
        return { rows: h, cols: w, channels };
      };
      // Features per image, looked up by content: within a batch every image is both an A and
      // a B, and without augmentation the same images come back every epoch.
      const features = (data: Float32Array | Int32Array | Uint8Array, img: number): FsimFeatures => {
        const size = h * w * ch;
        const key = contentKey(data, img * size, size);
        let f = cache.get(key);
        if (!f) {
          f = fsimFeatures(plane(data, img), cfg, options.chromatic);
          cache.set(key, f);
        }
        return f;
      };
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const r = fsimCompare(features(a, i), features(b, i), cfg);
        out[i] = options.chromatic ? r.fsimc : r.fsim;
      }
      return tf.tensor1d(out, 'float32');
    };

    return {
      name: 'fsim',
      similarity: fsim,
      kappa(input: KappaInput): tf.Tensor1D {
        return tf.tidy(() => oneMinusClipped(fsim(input)));
      },
    };
  },
});
