import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { crossEntropy, reduce, smoothedTargets, softTargetCrossEntropy, weightedMean } from '../../src/train/losses.ts';

describe('losses', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  // Row 0: logits (2, 0, −1): logsumexp = ln(e² + 1 + e⁻¹) = 2.1698460, log p = (−0.1698460, −2.1698460, −3.1698460).
  // Row 1: logits (0.5, −0.5, 1.5): −log p₂ = 0.4076060.
  const logits = () =>
    tf.tensor2d([
      [2, 0, -1],
      [0.5, -0.5, 1.5],
    ]);

  it('cross-entropy per sample, without and with label smoothing (hand-computed)', () => {
    tf.tidy(() => {
      const plain = crossEntropy(logits(), [0, 2]).dataSync();
      expect(plain[0]).to.be.closeTo(0.169846, 1e-6);
      expect(plain[1]).to.be.closeTo(0.407606, 1e-6);
      // ε = 0.1, C = 3: target (0.9333…, 0.0333…, 0.0333…) → 0.9333·0.169846 + 0.0333·(2.169846 + 3.169846) = 0.3365127
      const smooth = crossEntropy(logits(), tf.tensor1d([0, 2], 'int32'), 3, 0.1).dataSync();
      expect(smooth[0]).to.be.closeTo(0.3365127, 1e-6);
      expect(smooth[1]).to.be.closeTo(0.507606, 1e-6);
      expect(() => crossEntropy(logits(), [0, 2], 7)).to.throw(/logits have 3 classes, expected 7/);
    });
  });

  it('soft-target cross-entropy (hand-computed)', () => {
    tf.tidy(() => {
      // 0.25·0.169846 + 0.75·2.169846 = 1.6698460
      const v = softTargetCrossEntropy(tf.tensor2d([[2, 0, -1]]), tf.tensor2d([[0.25, 0.75, 0]])).dataSync();
      expect(v[0]).to.be.closeTo(1.669846, 1e-6);
      const t = smoothedTargets([1], 4, 0.2).arraySync();
      t[0]!.forEach((x, i) => expect(x).to.be.closeTo([0.05, 0.85, 0.05, 0.05][i]!, 1e-7));
    });
  });

  it('stays finite for huge logits', () => {
    tf.tidy(() => {
      const v = crossEntropy(
        tf.tensor2d([
          [1000, 0],
          [-1000, 1000],
        ]),
        [1, 1],
      ).dataSync();
      expect(v[0]).to.be.closeTo(1000, 1e-3);
      expect(v[1]).to.be.closeTo(0, 1e-6);
    });
  });

  it('reduces by mean, sum, or a weighted mean over the batch', () => {
    tf.tidy(() => {
      const l = tf.tensor1d([1, 2, 3, 6]);
      expect(reduce(l).dataSync()[0]).to.equal(3);
      expect(reduce(l, 'sum').dataSync()[0]).to.equal(12);
      expect(reduce(l, 'none').shape).to.deep.equal([4]);
      // (1/N_U)·Σ 1[conf > τ]·CE: (2 + 6) / 4
      expect(weightedMean(l, tf.tensor1d([0, 1, 0, 1])).dataSync()[0]).to.equal(2);
      expect(weightedMean(l, tf.tensor1d([0, 1, 0, 1]), 2).dataSync()[0]).to.equal(4);
    });
  });
});
