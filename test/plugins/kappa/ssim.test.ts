import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import ssim from '../../../plugins/kappa/ssim.ts';
import { ctx, loadFixture, imagePairs, measure, pattern } from './helpers.ts';

interface Options {
  window: number;
  sigma: number;
  k1: number;
  k2: number;
  data_range: number;
  color: 'luminance' | 'channels';
  cache_mb: number;
}
const defaults: Options = { window: 11, sigma: 1.5, k1: 0.01, k2: 0.03, data_range: 1, color: 'luminance', cache_mb: 128 };

function evaluate(opts: Partial<Options>, a: tf.Tensor4D, b: tf.Tensor4D): { sim: number[]; kappa: number[] } {
  return measure(ssim.create({ ...defaults, ...opts }, ctx), imagePairs(a, b));
}

describe('kappa plugin: ssim', () => {
  let goldhill: tf.Tensor4D;
  let goldhillJpeg: tf.Tensor4D;
  let tidRef: tf.Tensor4D;
  let tidDis: tf.Tensor4D;

  before(async () => {
    [goldhill, goldhillJpeg, tidRef, tidDis] = await Promise.all(['goldhill.png', 'goldhill_jpeg.png', 'I01.png', 'i01_01_5.png'].map(loadFixture));
  });
  after(() => tf.dispose([goldhill, goldhillJpeg, tidRef, tidDis]));

  it('matches scikit-image structural_similarity on the goldhill JPEG pair (0.682372)', () => {
    const { sim, kappa } = evaluate({}, goldhillJpeg, goldhill);
    expect(sim[0]).to.be.closeTo(0.682372, 1e-5);
    expect(kappa[0]).to.be.closeTo(1 - sim[0]!, 1e-6);
  });

  it('identical images: SSIM 1, κ 0', () => {
    const { sim, kappa } = evaluate({}, tidRef, tidRef);
    expect(sim[0]).to.be.closeTo(1, 1e-6);
    expect(kappa[0]).to.be.closeTo(0, 1e-6);
  });

  it('two constant images: (2ab + C1) / (a² + b² + C1)', () => {
    const a = tf.fill([1, 16, 16, 1], 0.5) as tf.Tensor4D;
    const b = tf.fill([1, 16, 16, 1], 0.25) as tf.Tensor4D;
    const c1 = 0.01 ** 2;
    const expected = (2 * 0.5 * 0.25 + c1) / (0.5 ** 2 + 0.25 ** 2 + c1);
    expect(evaluate({}, a, b).sim[0]).to.be.closeTo(expected, 1e-5);
    tf.dispose([a, b]);
  });

  it('is invariant to the data scale when data_range follows it', () => {
    const a = tf.mul(goldhillJpeg, 255) as tf.Tensor4D;
    const b = tf.mul(goldhill, 255) as tf.Tensor4D;
    const scaled = evaluate({ data_range: 255 }, a, b).sim[0]!;
    const unit = evaluate({}, goldhillJpeg, goldhill).sim[0]!;
    expect(scaled).to.be.closeTo(unit, 1e-4);
    tf.dispose([a, b]);
  });

  it("'channels' averages per-channel SSIM; on grey images it equals the luminance value", () => {
    const a1 = pattern(40, 0, 1);
    const b1 = pattern(40, 3, 1);
    const grey = evaluate({}, a1, b1).sim[0]!;
    expect(grey).to.be.lessThan(1);
    expect(evaluate({ color: 'channels' }, a1, b1).sim[0]).to.equal(grey);
    const a3 = tf.tile(a1, [1, 1, 1, 3]) as tf.Tensor4D;
    const b3 = tf.tile(b1, [1, 1, 1, 3]) as tf.Tensor4D;
    expect(evaluate({ color: 'channels' }, a3, b3).sim[0]).to.be.closeTo(grey, 1e-6);
    expect(evaluate({}, a3, b3).sim[0]).to.be.closeTo(grey, 1e-6);
    const a = pattern(40, 0);
    const b = pattern(40, 3);
    const perChannel = [0, 1, 2].map((c) => {
      const ac = tf.slice(a, [0, 0, 0, c], [1, -1, -1, 1]) as tf.Tensor4D;
      const bc = tf.slice(b, [0, 0, 0, c], [1, -1, -1, 1]) as tf.Tensor4D;
      const v = evaluate({}, ac, bc).sim[0]!;
      tf.dispose([ac, bc]);
      return v;
    });
    const mean = perChannel.reduce((t, v) => t + v, 0) / 3;
    expect(evaluate({ color: 'channels' }, a, b).sim[0]).to.be.closeTo(mean, 1e-6);
    tf.dispose([a1, b1, a3, b3, a, b]);
  });

  it('κ = clip(1 − SSIM): anti-correlated images give SSIM < 0 and κ 1', () => {
    const a = tf.tensor4d(
      Array.from({ length: 256 }, (_, i) => ((i + (i >> 4)) % 2 ? 1 : 0)),
      [1, 16, 16, 1],
    );
    const b = tf.sub(1, a) as tf.Tensor4D;
    const { sim, kappa } = evaluate({}, a, b);
    expect(sim[0]).to.be.lessThan(0);
    expect(kappa[0]).to.equal(1);
    tf.dispose([a, b]);
  });

  it('a batch gives the per-pair values of single calls', () => {
    const a = tf.concat([goldhillJpeg, goldhill]) as tf.Tensor4D;
    const b = tf.concat([goldhill, goldhill]) as tf.Tensor4D;
    const batch = evaluate({}, a, b);
    const single = evaluate({}, goldhillJpeg, goldhill);
    expect(batch.sim[0]).to.be.closeTo(single.sim[0]!, 1e-6);
    expect(batch.sim[1]).to.be.closeTo(1, 1e-6);
    tf.dispose([a, b]);
  });

  it('gives a mixing batch (B a permutation of A) the same bits with per-image means kept or not', () => {
    for (const color of ['luminance', 'channels'] as const) {
      const a = tf.concat([pattern(24, 0), pattern(24, 1), pattern(24, 2), pattern(24, 3)]) as tf.Tensor4D;
      const b = tf.gather(a, tf.tensor1d([2, 0, 3, 1], 'int32')) as tf.Tensor4D;
      const kept = ssim.create({ ...defaults, color }, ctx);
      const first = measure(kept, imagePairs(a, b));
      const again = measure(kept, imagePairs(a, b));
      const fresh = evaluate({ color, cache_mb: 0 }, a, b);
      expect(first.sim, color).to.deep.equal(fresh.sim);
      expect(again.sim, color).to.deep.equal(fresh.sim);
      // Pair by pair, each pair alone: the same numbers.
      for (let i = 0; i < 4; i++) {
        const one = evaluate({ color, cache_mb: 0 }, tf.slice(a, [i], [1]) as tf.Tensor4D, tf.slice(b, [i], [1]) as tf.Tensor4D);
        expect(one.sim[0], `${color} pair ${i}`).to.equal(fresh.sim[i]);
      }
      tf.dispose([a, b]);
    }
  });

  it('rejects images smaller than the window and mismatched shapes', () => {
    const small = tf.zeros([1, 8, 8, 1]) as tf.Tensor4D;
    expect(() => evaluate({}, small, small)).to.throw(/window/);
    expect(() => evaluate({}, goldhill, tidRef)).to.throw(/differ in shape/);
    expect(() => ssim.create({ ...defaults, window: 10 }, ctx)).to.throw(/odd/);
    small.dispose();
  });

  it('does not leak tensors', () => {
    const metric = ssim.create({ ...defaults, color: 'channels' }, ctx);
    const a = pattern(40, 0);
    const b = pattern(40, 3);
    const inp = imagePairs(a, b);
    metric.kappa(inp).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) {
      metric.similarity(inp).dispose();
      metric.kappa(inp).dispose();
    }
    expect(tf.memory().numTensors).to.equal(before);
    tf.dispose([a, b, inp.boxesA, inp.boxesB]);
  });
});
