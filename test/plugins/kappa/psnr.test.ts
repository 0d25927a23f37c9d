import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import psnr from '../../../plugins/kappa/psnr.ts';
import { ctx, loadFixture, imagePairs, measure } from './helpers.ts';

interface Options {
  data_range: number;
  color: 'channels' | 'luminance';
  min_db: number;
  max_db: number;
}
const defaults: Options = { data_range: 1, color: 'channels', min_db: 10, max_db: 40 };

function constant(value: number, n = 1, size = 8, channels = 3): tf.Tensor4D {
  return tf.fill([n, size, size, channels], value) as tf.Tensor4D;
}

function evaluate(opts: Partial<Options>, a: tf.Tensor4D, b: tf.Tensor4D): { sim: number[]; kappa: number[] } {
  return measure(psnr.create({ ...defaults, ...opts }, ctx), imagePairs(a, b));
}

describe('kappa plugin: psnr', () => {
  let goldhill: tf.Tensor4D;
  let goldhillJpeg: tf.Tensor4D;

  before(async () => {
    goldhill = await loadFixture('goldhill.png');
    goldhillJpeg = await loadFixture('goldhill_jpeg.png');
  });
  after(() => tf.dispose([goldhill, goldhillJpeg]));

  it('matches scikit-image on the goldhill JPEG pair (27.4314 dB)', () => {
    const { sim } = evaluate({}, goldhillJpeg, goldhill);
    expect(sim[0]).to.be.closeTo(27.4314, 1e-4);
  });

  it('two constant images: 10·log10(1 / 0.25²) = 12.0412 dB', () => {
    const { sim, kappa } = evaluate({}, constant(0.5), constant(0.25));
    const expected = 10 * Math.log10(1 / 0.0625);
    expect(sim[0]).to.be.closeTo(expected, 1e-4);
    expect(kappa[0]).to.be.closeTo((40 - expected) / 30, 1e-5);
  });

  it('data_range rescales the peak: [0, 255] data with range 255 equals [0, 1] data with range 1', () => {
    const { sim } = evaluate({ data_range: 255 }, constant(0.5 * 255), constant(0.25 * 255));
    expect(sim[0]).to.be.closeTo(10 * Math.log10(16), 1e-4);
  });

  it('identical images: PSNR ∞ and κ 0', () => {
    const { sim, kappa } = evaluate({}, constant(0.3), constant(0.3));
    expect(sim[0]).to.equal(Infinity);
    expect(kappa[0]).to.equal(0);
  });

  it('κ mapping: 1 at and below min_db, 0 at and above max_db, linear between', () => {
    // black vs white: MSE 1, PSNR 0 dB
    expect(evaluate({}, constant(0), constant(1)).kappa[0]).to.equal(1);
    // PSNR exactly min_db = 10: |difference| = 10^(-1/2)
    expect(evaluate({}, constant(0.2), constant(0.2 + Math.sqrt(0.1))).kappa[0]).to.be.closeTo(1, 1e-5);
    // PSNR 25 dB, the midpoint of [10, 40]
    const mid = evaluate({}, constant(0.4), constant(0.4 + Math.pow(10, -1.25)));
    expect(mid.sim[0]).to.be.closeTo(25, 1e-3);
    expect(mid.kappa[0]).to.be.closeTo(0.5, 1e-4);
    // PSNR 50 dB, above max_db
    expect(evaluate({}, constant(0.4), constant(0.4 + 10 ** -2.5)).kappa[0]).to.equal(0);
    // custom ends
    const custom = evaluate({ min_db: 20, max_db: 30 }, constant(0.4), constant(0.4 + Math.pow(10, -1.25)));
    expect(custom.kappa[0]).to.be.closeTo(0.5, 1e-4);
  });

  it("'luminance' compares Y only", () => {
    // equal luminance (0.299·R + 0.587·G + 0.114·B = 0.5) but different colours
    const a = tf.tensor4d([0.5, 0.5, 0.5], [1, 1, 1, 3]).tile([1, 4, 4, 1]) as tf.Tensor4D;
    const b = tf.tensor4d([1, 0.5 - (0.299 * 0.5) / 0.587, 0.5], [1, 1, 1, 3]).tile([1, 4, 4, 1]) as tf.Tensor4D;
    expect(evaluate({ color: 'luminance' }, a, b).sim[0]).to.be.greaterThan(60);
    expect(evaluate({ color: 'channels' }, a, b).sim[0]).to.be.lessThan(20);
    tf.dispose([a, b]);
  });

  it('rejects max_db ≤ min_db', () => {
    expect(() => psnr.create({ ...defaults, min_db: 30, max_db: 30 }, ctx)).to.throw(/max_db/);
  });

  it('a batch gives the per-pair values of single calls', () => {
    const black = tf.zerosLike(goldhill) as tf.Tensor4D;
    const a = tf.concat([goldhillJpeg, goldhill, goldhill]) as tf.Tensor4D;
    const b = tf.concat([goldhill, goldhill, black]) as tf.Tensor4D;
    const batch = evaluate({}, a, b);
    const single = evaluate({}, goldhillJpeg, goldhill);
    expect(batch.sim[0]).to.be.closeTo(single.sim[0]!, 1e-4);
    expect(batch.kappa[0]).to.be.closeTo(single.kappa[0]!, 1e-6);
    expect(batch.sim[1]).to.equal(Infinity);
    expect(batch.kappa[1]).to.equal(0);
    const dark = evaluate({}, goldhill, black);
    expect(batch.sim[2]).to.be.closeTo(dark.sim[0]!, 1e-4);
    tf.dispose([a, b, black]);
  });

  it('does not leak tensors', () => {
    const metric = psnr.create(defaults, ctx);
    const inp = imagePairs(goldhillJpeg, goldhill);
    metric.kappa(inp).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      metric.similarity(inp).dispose();
      metric.kappa(inp).dispose();
    }
    expect(tf.memory().numTensors).to.equal(before);
    tf.dispose([inp.boxesA, inp.boxesB]);
  });
});
