import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import iou from '../../../plugins/kappa/iou.ts';
import type { KappaInput } from '../../../plugins/mixing/internal/kinds.ts';
import { ctx, measure } from './helpers.ts';

const metric = iou.create({}, ctx);
const blank = tf.zeros([1, 4, 4, 3]) as tf.Tensor4D;

function pairs(a: number[][], b: number[][]): KappaInput {
  return { imagesA: blank, imagesB: blank, boxesA: tf.tensor2d(a), boxesB: tf.tensor2d(b) };
}

function run(a: number[][], b: number[][]): { sim: number[]; kappa: number[] } {
  return measure(metric, pairs(a, b));
}

describe('kappa plugin: iou', () => {
  after(() => blank.dispose());

  it('is declared as a kappa plugin', () => {
    expect(iou.kind).to.equal('kappa');
    expect(iou.name).to.equal('iou');
    expect(metric.name).to.equal('iou');
  });

  it('overlapping boxes: 25 / 175', () => {
    const { sim, kappa } = run([[0, 0, 10, 10]], [[5, 5, 15, 15]]);
    expect(sim[0]).to.be.closeTo(25 / 175, 1e-6);
    expect(kappa[0]).to.be.closeTo(1 - 25 / 175, 1e-6);
  });

  it('a box inside another: area ratio', () => {
    const { sim } = run([[0, 0, 10, 10]], [[2, 2, 4, 4]]);
    expect(sim[0]).to.be.closeTo(4 / 100, 1e-6);
  });

  it('identical boxes: IoU 1, κ 0', () => {
    const { sim, kappa } = run([[25, 25, 220, 220]], [[25, 25, 220, 220]]);
    expect(sim[0]).to.equal(1);
    expect(kappa[0]).to.equal(0);
  });

  it('disjoint and edge-touching boxes: IoU 0, κ 1', () => {
    const { sim, kappa } = run(
      [
        [0, 0, 10, 10],
        [0, 0, 10, 10],
      ],
      [
        [20, 20, 30, 30],
        [10, 0, 20, 10],
      ],
    );
    expect(sim).to.deep.equal([0, 0]);
    expect(kappa).to.deep.equal([1, 1]);
  });

  it('empty union (two zero-area boxes): IoU 0, not NaN', () => {
    const { sim, kappa } = run(
      [
        [5, 5, 5, 5],
        [3, 3, 1, 1],
      ],
      [
        [5, 5, 5, 5],
        [3, 3, 1, 1],
      ],
    );
    expect(sim).to.deep.equal([0, 0]);
    expect(kappa).to.deep.equal([1, 1]);
  });

  it('is symmetric and evaluates each pair of a batch independently', () => {
    const a = [
      [0, 0, 10, 10],
      [0, 0, 10, 10],
      [25, 25, 220, 220],
      [0, 0, 4, 8],
    ];
    const b = [
      [5, 5, 15, 15],
      [20, 20, 30, 30],
      [25, 25, 220, 220],
      [2, 0, 6, 8],
    ];
    const batch = run(a, b);
    const swapped = run(b, a);
    for (let i = 0; i < a.length; i++) {
      const single = run([a[i]!], [b[i]!]);
      expect(batch.sim[i]).to.be.closeTo(single.sim[0]!, 1e-7);
      expect(batch.kappa[i]).to.be.closeTo(single.kappa[0]!, 1e-7);
      expect(swapped.sim[i]).to.be.closeTo(batch.sim[i]!, 1e-7);
    }
    expect(batch.sim[3]).to.be.closeTo(16 / 48, 1e-6);
  });

  it('rejects boxes that are not [N, 4]', () => {
    const input = { imagesA: blank, imagesB: blank, boxesA: tf.zeros([2, 3]) as tf.Tensor2D, boxesB: tf.zeros([2, 3]) as tf.Tensor2D };
    expect(() => metric.kappa(input)).to.throw(/\[N, 4\]/);
    tf.dispose([input.boxesA, input.boxesB]);
  });

  it('does not leak tensors', () => {
    const input = pairs([[0, 0, 10, 10]], [[5, 5, 15, 15]]);
    metric.kappa(input).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      metric.similarity(input).dispose();
      metric.kappa(input).dispose();
    }
    expect(tf.memory().numTensors).to.equal(before);
    tf.dispose([input.boxesA, input.boxesB]);
  });
});
