import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { createRegistry, type PluginRegistry } from '../../../src/core/registry.ts';
import { Rng } from '../../../src/core/rng.ts';

const ctx = { seed: 1, scale: 'smoke', recipeDir: '.' };
let registry: PluginRegistry;
before(async () => {
  await tf.setBackend('cpu');
  registry = await createRegistry();
});

function combine(name: string, lv: number[], li: number[], lj: number[], k: number[]): number[] {
  const loss = registry.create('mix-loss', { use: name }, ctx);
  return tf.tidy(() => Array.from(loss.combine(tf.tensor1d(lv), tf.tensor1d(li), tf.tensor1d(lj), tf.tensor1d(k)).dataSync()));
}

describe('FaceMix loss variants (Table 15)', () => {
  const lv = [1.5, 0.5];
  const li = [2, 1];
  const lj = [0.25, 3];

  it('L4 = L_v + κ(L_i + L_j): equals L_v at κ = 0 and L_v + L_i + L_j at κ = 1', () => {
    expect(combine('L4', lv, li, lj, [0, 0])).to.deep.equal([1.5, 0.5]);
    expect(combine('L4', lv, li, lj, [1, 1])).to.deep.equal([3.75, 4.5]);
    // κ = 0.5: 1.5 + 0.5·2.25 = 2.625; 0.5 + 0.5·4 = 2.5
    expect(combine('L4', lv, li, lj, [0.5, 0.5])).to.deep.equal([2.625, 2.5]);
  });

  it('L1 = (1 − κ)L_v + L_i + L_j: equals L_i + L_j at κ = 1', () => {
    expect(combine('L1', lv, li, lj, [1, 1])).to.deep.equal([2.25, 4]);
    expect(combine('L1', lv, li, lj, [0, 0])).to.deep.equal([3.75, 4.5]);
  });

  it('L2 = L_v + (1 − κ)(L_i + L_j) and L3 = κL_v + L_i + L_j, per sample', () => {
    // κ = [0.25, 0.75]
    expect(combine('L2', lv, li, lj, [0.25, 0.75])).to.deep.equal([1.5 + 0.75 * 2.25, 0.5 + 0.25 * 4]);
    expect(combine('L3', lv, li, lj, [0.25, 0.75])).to.deep.equal([0.25 * 1.5 + 2.25, 0.75 * 0.5 + 4]);
  });
});

describe('mixing strategies', () => {
  // A "model" whose logits are the mean pixel value per channel, padded to 3 classes: the losses
  // then have closed forms we can compute by hand.
  const logitsOf = (x: tf.Tensor4D) => tf.mean(x, [1, 2]) as tf.Tensor2D;
  const images = () => tf.tensor4d([[[[0, 0, 0]]], [[[3, 0, 0]]]], [2, 1, 1, 3]);
  const batch = () => ({
    images: images(),
    labels: tf.tensor1d([0, 1], 'int32'),
    boxes: tf.tensor2d([
      [0, 0, 10, 10],
      [5, 5, 15, 15],
    ]),
  });
  const ce = (logits: number[], y: number) => {
    const lse = Math.log(logits.reduce((a, v) => a + Math.exp(v), 0));
    return lse - logits[y]!;
  };

  it('none: the mean cross-entropy of the labeled images', () => {
    const m = registry.create('mixing', { use: 'none' }, ctx);
    const loss = tf.tidy(
      () => m.loss(batch(), { numClasses: 3, labelSmoothing: 0, realLabelSmoothing: 0, rng: new Rng(1), logits: logitsOf }).loss.dataSync()[0]!,
    );
    expect(loss).to.be.closeTo((ce([0, 0, 0], 0) + ce([3, 0, 0], 1)) / 2, 1e-5);
  });

  it('facemix with L4 and IoU κ: L_v on the mix, L_i, L_j on the ORIGINAL images, κ = 1 − IoU of the original boxes', () => {
    const m = registry.create('mixing', { use: 'facemix', alpha: 1, kappa: { use: 'iou' }, loss: { use: 'L4' } }, ctx);
    const rng = new Rng(42);
    const lambda = new Rng(42).beta(1, 1);
    const r = m.loss(batch(), { numClasses: 3, labelSmoothing: 0, realLabelSmoothing: 0, rng, logits: logitsOf });
    const out = { loss: r.loss.dataSync()[0]!, stats: r.stats };
    r.loss.dispose();
    // Pairs: (0 ↔ 1). Mixed logits: sample 0 → [3(1 − λ), 0, 0], sample 1 → [3λ, 0, 0].
    const lv0 = -(lambda * Math.log(softmax([3 * (1 - lambda), 0, 0])[0]!) + (1 - lambda) * Math.log(softmax([3 * (1 - lambda), 0, 0])[1]!));
    const lv1 = -(lambda * Math.log(softmax([3 * lambda, 0, 0])[1]!) + (1 - lambda) * Math.log(softmax([3 * lambda, 0, 0])[0]!));
    const li0 = ce([0, 0, 0], 0);
    const li1 = ce([3, 0, 0], 1);
    const kappa = 1 - 25 / 175; // IoU of [0,0,10,10] and [5,5,15,15]
    const expected = (lv0 + kappa * (li0 + li1) + lv1 + kappa * (li1 + li0)) / 2;
    expect(out.stats.lambda).to.equal(lambda);
    expect(out.stats.kappa).to.be.closeTo(kappa, 1e-6);
    expect(out.loss).to.be.closeTo(expected, 1e-5);
  });

  it('disposes every intermediate tensor', () => {
    const m = registry.create('mixing', { use: 'facemix', alpha: 1, kappa: { use: 'psnr' }, loss: { use: 'L1' } }, ctx);
    const b = batch();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) m.loss(b, { numClasses: 3, labelSmoothing: 0.1, realLabelSmoothing: 0, rng: new Rng(i), logits: logitsOf }).loss.dispose();
    expect(tf.memory().numTensors).to.equal(before);
    tf.dispose([b.images, b.labels, b.boxes]);
  });
});

function softmax(v: number[]): number[] {
  const e = v.map(Math.exp);
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

describe('the shipped losses against reference values', () => {
  // Four 1×1 images whose pixels are the logits (the "model" is the mean per channel), and the
  // supervised stage's defaults: smoothing 0.1 on the mixed targets only, plain cross-entropy on
  // the real images. The expected values were computed with PyTorch 1.13 in float64: timm's
  // mixup_target (off = ε/C, on = 1 − ε + ε/C, paired with the flipped batch), the authors'
  // FaceMix sum (Σ L_v + Σ (1 − IoU)·(L_i + L_i.flip)) / N with F.cross_entropy(reduction='none')
  // on the original images, and F.cross_entropy with soft targets for Mixup.
  const logitsOf = (x: tf.Tensor4D) => tf.mean(x, [1, 2]) as tf.Tensor2D;
  const shipped = { numClasses: 3, labelSmoothing: 0.1, realLabelSmoothing: 0 };
  const lambda = 0.13526229320649594; // Rng(42).beta(1, 1)
  const batch = () => ({
    images: tf.tensor4d([0.9, 0.1, 0.3, 0.2, 0.8, 0.4, 0.5, 0.5, 1.6, 1.2, 0.0, 0.7], [4, 1, 1, 3]),
    labels: tf.tensor1d([0, 1, 2, 1], 'int32'),
    boxes: tf.tensor2d([
      [0, 0, 10, 10],
      [5, 5, 15, 15],
      [2, 0, 12, 8],
      [0, 4, 10, 14],
    ]),
  });
  const lossOf = (slot: Record<string, unknown>) => {
    const m = registry.create('mixing', slot as never, ctx);
    const b = batch();
    const r = m.loss(b, { ...shipped, rng: new Rng(42), logits: logitsOf });
    const out = { loss: r.loss.dataSync()[0]!, stats: r.stats };
    tf.dispose([r.loss, b.images, b.labels, b.boxes]);
    return out;
  };

  it('FaceMix (IoU, L4) as shipped: 2.3210677 with mean κ 0.7196765', () => {
    const out = lossOf({ use: 'facemix', alpha: 1, kappa: { use: 'iou' }, loss: { use: 'L4' } });
    expect(out.stats.lambda).to.equal(lambda);
    expect(out.stats.kappa).to.be.closeTo(0.7196765498652291, 1e-6);
    expect(out.loss).to.be.closeTo(2.3210677332678737, 1e-5);
  });

  it('Mixup: 1.0285317 (soft-target cross-entropy on the virtual images, smoothing 0.1)', () => {
    const out = lossOf({ use: 'mixup', alpha: 1 });
    expect(out.stats.lambda).to.equal(lambda);
    expect(out.loss).to.be.closeTo(1.0285316699906604, 1e-5);
  });

  it('no mixing: plain cross-entropy 0.9613788 (0.9838788 when real_label_smoothing is 0.1)', () => {
    expect(lossOf({ use: 'none' }).loss).to.be.closeTo(0.961378792272509, 1e-5);
    const m = registry.create('mixing', { use: 'none' }, ctx);
    const b = batch();
    const loss = tf.tidy(() => m.loss(b, { ...shipped, realLabelSmoothing: 0.1, rng: new Rng(1), logits: logitsOf }).loss.dataSync()[0]!);
    tf.dispose([b.images, b.labels, b.boxes]);
    expect(loss).to.be.closeTo(0.983878792272509, 1e-5);
  });
});
