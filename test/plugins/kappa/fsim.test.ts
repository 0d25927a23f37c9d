import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import fsim from '../../../plugins/kappa/fsim.ts';
import { averageDownsample, downsampleFactor, scharrMagnitude } from '../../../plugins/kappa/internal/fsim-core.ts';
import { ctx, loadFixture, imagePairs, measure, pattern } from './helpers.ts';

type Options = Parameters<typeof fsim.create>[0];
const defaults: Options = {
  preset: 'reference',
  chromatic: false,
  cache_mb: 256,
  data_range: 1,
  downsample: 0,
  nscale: null,
  norient: null,
  min_wavelength: null,
  mult: null,
  sigma_onf: null,
  dtheta_on_sigma: null,
  k: null,
  cut_off: null,
  g: null,
  epsilon: null,
  t1: 0.85,
  t2: 160,
  t3: 200,
  t4: 200,
  lambda: 0.03,
};

function evaluate(opts: Partial<Options>, a: tf.Tensor4D, b: tf.Tensor4D): { sim: number[]; kappa: number[] } {
  return measure(fsim.create({ ...defaults, ...opts }, ctx), imagePairs(a, b));
}

describe('kappa plugin: fsim', () => {
  let goldhill: tf.Tensor4D;
  let goldhillJpeg: tf.Tensor4D;
  let tidRef: tf.Tensor4D;
  let tidDis: tf.Tensor4D;

  before(async () => {
    [goldhill, goldhillJpeg, tidRef, tidDis] = await Promise.all(['goldhill.png', 'goldhill_jpeg.png', 'I01.png', 'i01_01_5.png'].map(loadFixture));
  });
  after(() => tf.dispose([goldhill, goldhillJpeg, tidRef, tidDis]));

  describe('against the original MATLAB FeatureSIM values', () => {
    it('goldhill JPEG pair: FSIM 0.89691', () => {
      const { sim, kappa } = evaluate({}, goldhillJpeg, goldhill);
      expect(sim[0]).to.be.closeTo(0.89691, 1e-4);
      expect(kappa[0]).to.be.closeTo(1 - sim[0]!, 1e-6);
    });

    it('TID2013 i01_01_5 vs I01 (384×512 RGB, non-power-of-two after downsampling): FSIM 0.93674', () => {
      expect(evaluate({}, tidDis, tidRef).sim[0]).to.be.closeTo(0.93674, 1e-4);
    });

    it('TID2013 i01_01_5 vs I01: FSIMc 0.92587', () => {
      expect(evaluate({ chromatic: true }, tidDis, tidRef).sim[0]).to.be.closeTo(0.92587, 1e-4);
    });
  });

  it('identical images: FSIM 1, κ 0', () => {
    const a = pattern(64, 2);
    const { sim, kappa } = evaluate({ chromatic: true }, a, a);
    expect(sim[0]).to.be.closeTo(1, 1e-6);
    expect(kappa[0]).to.be.closeTo(0, 1e-6);
    a.dispose();
  });

  it('is symmetric in its two images', () => {
    const a = pattern(48, 0);
    const b = pattern(48, 3);
    const ab = evaluate({ chromatic: true }, a, b).sim[0]!;
    const ba = evaluate({ chromatic: true }, b, a).sim[0]!;
    expect(ab).to.be.closeTo(ba, 1e-6);
    expect(ab).to.be.lessThan(1);
    tf.dispose([a, b]);
  });

  it('grey images: FSIMc equals FSIM, with 1 or 3 equal channels', () => {
    const a1 = pattern(48, 0, 1);
    const b1 = pattern(48, 3, 1);
    const a3 = tf.tile(a1, [1, 1, 1, 3]) as tf.Tensor4D;
    const b3 = tf.tile(b1, [1, 1, 1, 3]) as tf.Tensor4D;
    const grey = evaluate({}, a1, b1).sim[0]!;
    expect(grey).to.be.lessThan(1);
    expect(evaluate({ chromatic: true }, a1, b1).sim[0]).to.equal(grey);
    expect(evaluate({}, a3, b3).sim[0]).to.be.closeTo(grey, 1e-6);
    expect(evaluate({ chromatic: true }, a3, b3).sim[0]).to.be.closeTo(grey, 1e-6);
    tf.dispose([a1, b1, a3, b3]);
  });

  it('data_range: [0, 255] input with data_range 255 gives the same value', () => {
    const a = tf.mul(pattern(40, 0), 255) as tf.Tensor4D;
    const b = tf.mul(pattern(40, 2), 255) as tf.Tensor4D;
    const a1 = pattern(40, 0);
    const b1 = pattern(40, 2);
    expect(evaluate({ data_range: 255 }, a, b).sim[0]).to.be.closeTo(evaluate({}, a1, b1).sim[0]!, 1e-5);
    tf.dispose([a, b, a1, b1]);
  });

  it('flat images give finite values in [0, 1]', () => {
    const a = tf.fill([2, 24, 24, 3], 0.5) as tf.Tensor4D;
    const b = tf.concat([tf.fill([1, 24, 24, 3], 0.5), tf.fill([1, 24, 24, 3], 0.2)]) as tf.Tensor4D;
    const { sim, kappa } = evaluate({ chromatic: true }, a, b);
    expect(sim[0]).to.be.closeTo(1, 1e-6);
    for (const v of [...sim, ...kappa]) {
      expect(Number.isFinite(v)).to.equal(true);
      expect(v).to.be.within(0, 1);
    }
    tf.dispose([a, b]);
  });

  it("the 'ssfer-port' preset runs its own phase congruency and explicit numbers override a preset", () => {
    const a = pattern(64, 0);
    const b = pattern(64, 4);
    const reference = evaluate({}, a, b).sim[0]!;
    const port = evaluate({ preset: 'ssfer-port' }, a, b).sim[0]!;
    expect(port).to.be.within(0, 1);
    expect(port).to.not.be.closeTo(reference, 1e-6);
    const explicit = evaluate({ nscale: 4, norient: 4, min_wavelength: 6, mult: 2, sigma_onf: 0.55, dtheta_on_sigma: 1.2, k: 2, epsilon: 1e-4 }, a, b).sim[0]!;
    expect(explicit).to.equal(reference);
    const changed = evaluate({ nscale: 3 }, a, b).sim[0]!;
    expect(changed).to.not.equal(reference);
    tf.dispose([a, b]);
  });

  it('a batch gives the per-pair values of single calls (odd sizes included)', () => {
    const a = tf.concat([pattern(45, 0), pattern(45, 1), pattern(45, 5)]) as tf.Tensor4D;
    const b = tf.concat([pattern(45, 2), pattern(45, 1), pattern(45, 0)]) as tf.Tensor4D;
    const batch = evaluate({ chromatic: true }, a, b);
    for (let i = 0; i < 3; i++) {
      const ai = tf.slice(a, [i, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D;
      const bi = tf.slice(b, [i, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D;
      const single = evaluate({ chromatic: true }, ai, bi);
      expect(batch.sim[i]).to.equal(single.sim[0]);
      expect(batch.kappa[i]).to.equal(single.kappa[0]);
      tf.dispose([ai, bi]);
    }
    expect(batch.sim[1]).to.be.closeTo(1, 1e-6);
    tf.dispose([a, b]);
  });

  it('does not leak tensors', () => {
    const metric = fsim.create(defaults, ctx);
    const a = pattern(32, 0);
    const b = pattern(32, 1);
    const inp = imagePairs(a, b);
    metric.kappa(inp).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      metric.similarity(inp).dispose();
      metric.kappa(inp).dispose();
    }
    expect(tf.memory().numTensors).to.equal(before);
    tf.dispose([a, b, inp.boxesA, inp.boxesB]);
  });

  describe('FeatureSIM.m building blocks', () => {
    it('downsampling factor F = max(1, round(min side / 256))', () => {
      expect(downsampleFactor(512, 512, 0)).to.equal(2);
      expect(downsampleFactor(384, 512, 0)).to.equal(2);
      expect(downsampleFactor(224, 224, 0)).to.equal(1);
      expect(downsampleFactor(383, 1000, 0)).to.equal(1);
      expect(downsampleFactor(768, 1024, 0)).to.equal(3);
      expect(downsampleFactor(224, 224, 4)).to.equal(4);
    });

    it("averaging as conv2(x, ones(F)/F², 'same') then every F-th pixel", () => {
      // 3×3 image, F = 2: the even 'same' window covers rows/cols i..i+1, zero beyond the edge
      const x = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      const d = averageDownsample(x, 3, 3, 2);
      expect([d.rows, d.cols]).to.deep.equal([2, 2]);
      expect(Array.from(d.data)).to.deep.equal([(1 + 2 + 4 + 5) / 4, (3 + 6) / 4, (7 + 8) / 4, 9 / 4]);
      // F = 3: centred window, rows/cols i-1..i+1
      const e = averageDownsample(
        Float64Array.from({ length: 16 }, (_, i) => i),
        4,
        4,
        3,
      );
      expect([e.rows, e.cols]).to.deep.equal([2, 2]);
      expect(e.data[0]).to.be.closeTo((0 + 1 + 4 + 5) / 9, 1e-12);
      expect(e.data[3]).to.be.closeTo((10 + 11 + 14 + 15) / 9, 1e-12);
    });

    it('Scharr gradient magnitude with zero padding', () => {
      // a horizontal ramp x = c: interior |∇| = (3·2 + 10·2 + 3·2) / 16 = 2
      const x = Float64Array.from({ length: 25 }, (_, i) => i % 5);
      const g = scharrMagnitude(x, 5, 5);
      expect(g[2 * 5 + 2]).to.be.closeTo(2, 1e-12);
      // left border: the zero outside makes the difference 1 − 0 instead of 1 − (−1)
      expect(g[2 * 5 + 0]).to.be.closeTo(1, 1e-12);
    });
  });
});
