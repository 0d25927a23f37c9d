// Tests of the cutmix plugin, with Node's test runner: ssfer test cutmix.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPlugin, Rng, tf, type Batch, type MixingContext } from 'ssfer';
import plugin from './cutmix.ts';

// Two plain images, all 0 and all 1, and a model of one weight w whose logits for an image are
// [w · its mean pixel, 0]: the loss can be worked out by hand from the share of pixels pasted.
const w = tf.variable(tf.scalar(3));
const batch = (): Batch => ({
  images: tf.concat([tf.zeros([1, 8, 8, 3]), tf.ones([1, 8, 8, 3])]) as tf.Tensor4D,
  labels: tf.tensor1d([0, 1], 'int32'),
  boxes: tf.tensor2d([0, 0, 8, 8, 0, 0, 8, 8], [2, 4]),
});
const context = (seed: number): MixingContext => ({
  numClasses: 2,
  labelSmoothing: 0,
  realLabelSmoothing: 0,
  rng: new Rng(seed),
  logits: (x) =>
    tf.tidy(() => {
      const mean = tf.mean(x, [1, 2, 3]);
      return tf.stack([tf.mul(mean, w), tf.zerosLike(mean)], 1) as tf.Tensor2D;
    }),
});
/** Cross-entropy of logits [a, 0] against class c. */
const ce = (a: number, c: number) => Math.log(Math.exp(a) + 1) - (c === 0 ? a : 0);

test('cutmix: the loss weights both labels by the share of pixels pasted', async () => {
  const mixing = await createPlugin(plugin, { alpha: 1 });
  for (const seed of [1, 2, 3]) {
    const b = batch();
    const { loss, stats } = mixing.loss(b, context(seed));
    const p = stats.pasted!;
    assert.ok(p > 0 && p < 1, `pasted share ${p}`);
    // Image 0 (zeros) gets a box of ones, image 1 a box of zeros; each is the other's partner.
    const [m0, m1] = [p, 1 - p];
    const expected = ((1 - p) * ce(3 * m0, 0) + p * ce(3 * m0, 1) + (1 - p) * ce(3 * m1, 1) + p * ce(3 * m1, 0)) / 2;
    assert.ok(Math.abs(loss.dataSync()[0]! - expected) < 1e-5, `seed ${seed}: ${loss.dataSync()[0]} vs ${expected}`);
    tf.dispose([loss, b.images, b.labels, b.boxes]);
  }
});

test('cutmix: probability 0 is plain cross-entropy, and the same seed draws the same box', async () => {
  const plain = await createPlugin(plugin, { probability: 0 });
  const b = batch();
  const { loss } = plain.loss(b, context(1));
  assert.ok(Math.abs(loss.dataSync()[0]! - (ce(0, 0) + ce(3, 1)) / 2) < 1e-6);
  const mixing = await createPlugin(plugin, {});
  const [a, c] = [mixing.loss(b, context(7)), mixing.loss(b, context(7))];
  assert.equal(a.stats.pasted, c.stats.pasted);
  tf.dispose([loss, a.loss, c.loss, b.images, b.labels, b.boxes]);
});

test('cutmix: the gradient reaches the model, and no tensor is left behind', async () => {
  const mixing = await createPlugin(plugin, {});
  const b = batch();
  const before = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(() => mixing.loss(b, context(5)).loss, [w]);
  assert.ok(Math.abs(grads[w.name]!.dataSync()[0]!) > 0);
  tf.dispose([value, grads[w.name]!]);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([b.images, b.labels, b.boxes]);
});
