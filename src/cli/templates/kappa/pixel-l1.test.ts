// Tests of the pixel-l1 κ plugin, with Node's test runner: ssfer test pixel-l1.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPlugin, tf, type KappaInput } from 'ssfer';
import plugin from './pixel-l1.ts';

/** Pairs (a_i, b_i) of plain 4×4 images of the given grey levels. */
function pairs(a: number[], b: number[]): KappaInput {
  const plain = (levels: number[]) => tf.concat(levels.map((v) => tf.fill([1, 4, 4, 3], v))) as tf.Tensor4D;
  const boxes = tf.tensor2d(
    a.flatMap(() => [0, 0, 4, 4]),
    [a.length, 4],
  );
  return { imagesA: plain(a), imagesB: plain(b), boxesA: boxes, boxesB: boxes };
}

test('pixel-l1: κ is 0 for identical images, gain · |a − b| in between, and clipped at 1', async () => {
  const metric = await createPlugin(plugin, { gain: 4 });
  const input = pairs([0.5, 0.2, 0, 1], [0.5, 0.3, 1, 0]);
  const kappa = metric.kappa(input);
  assert.deepEqual(kappa.shape, [4]);
  const values = Array.from(kappa.dataSync());
  // |a − b| = 0, 0.1, 1, 1 → κ = 0, 0.4, 1 (4 clipped), 1.
  [0, 0.4, 1, 1].forEach((want, i) => assert.ok(Math.abs(values[i]! - want) < 1e-6, `pair ${i}: ${values[i]} vs ${want}`));
  const similarity = Array.from(metric.similarity(input).dataSync());
  [1, 0.9, 0, 0].forEach((want, i) => assert.ok(Math.abs(similarity[i]! - want) < 1e-6, `similarity ${i}`));
  tf.dispose([kappa, input.imagesA, input.imagesB, input.boxesA]);
});

test('pixel-l1: refuses batches of different shapes, and leaves no tensor behind', async () => {
  const metric = await createPlugin(plugin, {});
  const input = pairs([0, 1], [1, 0]);
  const before = tf.memory().numTensors;
  tf.dispose(metric.kappa(input));
  assert.equal(tf.memory().numTensors, before);
  const small = tf.zeros([2, 2, 2, 3]) as tf.Tensor4D;
  assert.throws(() => metric.kappa({ ...input, imagesB: small }), /differ in shape/);
  tf.dispose([small, input.imagesA, input.imagesB, input.boxesA]);
});
