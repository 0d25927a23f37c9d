import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { Ajv } from 'ajv';
import iou from '../../../plugins/kappa/iou.ts';
import psnr from '../../../plugins/kappa/psnr.ts';
import ssim from '../../../plugins/kappa/ssim.ts';
import fsim from '../../../plugins/kappa/fsim.ts';
import { fft1d, fft2d } from '../../../plugins/kappa/internal/fft.ts';
import { median } from '../../../plugins/kappa/internal/phasecong.ts';
import type { KappaMetric } from '../../../plugins/mixing/internal/kinds.ts';
import type { PluginDefinition } from '../../../src/core/plugin.ts';
import { ctx } from './helpers.ts';

const plugins = [iou, psnr, ssim, fsim] as PluginDefinition<any, KappaMetric>[];

/** Options as the recipe validator produces them: the schema's defaults filled in. */
function defaults(def: PluginDefinition): Record<string, unknown> {
  const ajv = new Ajv({ useDefaults: true, strict: true, allowUnionTypes: true });
  const options: Record<string, unknown> = {};
  const ok = ajv.validate(def.options, options);
  expect(ok, JSON.stringify(ajv.errors)).to.equal(true);
  return options;
}

/** Small deterministic generator so the checks do not depend on tfjs's random state. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function naiveDft(x: Float64Array, inverse: boolean): Float64Array {
  const n = x.length / 2;
  const out = new Float64Array(2 * n);
  for (let k = 0; k < n; k++) {
    let re = 0;
    let im = 0;
    for (let j = 0; j < n; j++) {
      const a = ((inverse ? 2 : -2) * Math.PI * ((j * k) % n)) / n;
      re += x[2 * j]! * Math.cos(a) - x[2 * j + 1]! * Math.sin(a);
      im += x[2 * j]! * Math.sin(a) + x[2 * j + 1]! * Math.cos(a);
    }
    out[2 * k] = inverse ? re / n : re;
    out[2 * k + 1] = inverse ? im / n : im;
  }
  return out;
}

describe('kappa plugins: common contract', () => {
  for (const def of plugins) {
    describe(def.name, () => {
      it('declares a complete options schema', () => {
        expect(def.kind).to.equal('kappa');
        expect(def.description).to.be.a('string').and.not.match(/\n/);
        expect(def.options.type).to.equal('object');
        expect(def.options.additionalProperties).to.equal(false);
        for (const [key, prop] of Object.entries(def.options.properties as Record<string, Record<string, unknown>>)) {
          expect(prop, key).to.have.property('default');
          expect(prop.description, key).to.be.a('string').and.not.equal('');
        }
      });

      it('refuses unknown options', () => {
        const ajv = new Ajv({ strict: true, allowUnionTypes: true });
        expect(ajv.validate(def.options, { no_such_option: 1 })).to.equal(false);
      });

      it('κ lies in [0, 1] and similarity is finite on random images and boxes', () => {
        const metric = def.create(defaults(def), ctx);
        expect(metric.name).to.equal(def.name);
        const rand = lcg(7);
        const n = 4;
        const size = 24;
        const pixels = () => Float32Array.from({ length: n * size * size * 3 }, rand);
        const box = () => {
          const x = rand() * size;
          const y = rand() * size;
          return [x, y, x + rand() * size, y + rand() * size];
        };
        const input = {
          imagesA: tf.tensor4d(pixels(), [n, size, size, 3]),
          imagesB: tf.tensor4d(pixels(), [n, size, size, 3]),
          boxesA: tf.tensor2d(Array.from({ length: n }, box)),
          boxesB: tf.tensor2d(Array.from({ length: n }, box)),
        };
        const before = tf.memory().numTensors;
        const s = metric.similarity(input);
        const k = metric.kappa(input);
        expect(s.shape).to.deep.equal([n]);
        expect(k.shape).to.deep.equal([n]);
        for (const v of s.dataSync()) expect(Number.isFinite(v)).to.equal(true);
        for (const v of k.dataSync()) expect(v).to.be.within(0, 1);
        tf.dispose([s, k]);
        expect(tf.memory().numTensors).to.equal(before);
        tf.dispose(Object.values(input));
      });
    });
  }

  describe('internal FFT', () => {
    it('matches a direct DFT for power-of-two, mixed-radix and prime lengths', () => {
      const rand = lcg(3);
      for (const n of [1, 2, 3, 5, 7, 8, 12, 30, 64, 97, 192, 224, 250, 257]) {
        const x = Float64Array.from({ length: 2 * n }, () => rand() - 0.5);
        for (const inverse of [false, true]) {
          const y = x.slice();
          fft1d(y, inverse);
          const ref = naiveDft(x, inverse);
          let err = 0;
          for (let i = 0; i < 2 * n; i++) err = Math.max(err, Math.abs(y[i]! - ref[i]!));
          expect(err, `n = ${n}`).to.be.below(1e-9);
        }
      }
    });

    it('2-D transform round-trips on a 6×10 grid and puts the sum at DC', () => {
      const rand = lcg(5);
      const rows = 6;
      const cols = 10;
      const x = Float64Array.from({ length: 2 * rows * cols }, (_, i) => (i % 2 ? 0 : rand()));
      const y = x.slice();
      fft2d(y, rows, cols);
      let sum = 0;
      for (let i = 0; i < rows * cols; i++) sum += x[2 * i]!;
      expect(y[0]).to.be.closeTo(sum, 1e-9);
      fft2d(y, rows, cols, true);
      for (let i = 0; i < x.length; i++) expect(y[i]).to.be.closeTo(x[i]!, 1e-12);
    });

    it('median follows MATLAB/numpy (mean of the middle pair for even lengths)', () => {
      expect(median(Float64Array.from([5, 1, 3]))).to.equal(3);
      expect(median(Float64Array.from([4, 1, 3, 2]))).to.equal(2.5);
      expect(median(Float64Array.from([2, 2, 2, 2, 2, 2]))).to.equal(2);
      const rand = lcg(11);
      const v = Float64Array.from({ length: 1001 }, rand);
      const sorted = v.slice().sort();
      expect(median(v)).to.equal(sorted[500]);
    });
  });
});
