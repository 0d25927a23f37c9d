// Tests of the hflip augment plugin, with Node's test runner: ssfer test hflip.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPlugin, Rng, tf } from 'ssfer';
import plugin from './hflip.ts';

// One 2×3 image whose pixels are numbered, and a box at its left.
const images = () =>
  tf.tensor4d(
    Float32Array.from({ length: 18 }, (_, i) => i / 18),
    [1, 2, 3, 3],
  );
const boxes = () => tf.tensor2d([[0, 0, 1, 2]]);

test('hflip: probability 1 mirrors the pixels and the box; twice gives the image back', async () => {
  const flip = await createPlugin(plugin, { probability: 1 });
  const [x, b] = [images(), boxes()];
  const once = flip.apply(x, b, new Rng(1));
  assert.deepEqual(once.boxes.arraySync(), [[2, 0, 3, 2]]);
  const pixels = x.arraySync()[0]!;
  const flipped = once.images.arraySync()[0]!;
  for (let r = 0; r < 2; r++) for (let c = 0; c < 3; c++) assert.deepEqual(flipped[r]![c], pixels[r]![2 - c]);
  const twice = flip.apply(once.images, once.boxes, new Rng(2));
  assert.deepEqual(twice.images.arraySync(), x.arraySync());
  assert.deepEqual(twice.boxes.arraySync(), b.arraySync());
  tf.dispose([x, b, once.images, once.boxes, twice.images, twice.boxes]);
});

test('hflip: probability 0 changes nothing; the default flips about half, the same for the same seed', async () => {
  const none = await createPlugin(plugin, { probability: 0 });
  const [x, b] = [images(), boxes()];
  const same = none.apply(x, b, new Rng(1));
  assert.deepEqual(same.images.arraySync(), x.arraySync());
  const half = await createPlugin(plugin, {});
  const many = tf.tile(x, [200, 1, 1, 1]) as tf.Tensor4D;
  const manyBoxes = tf.tile(b, [200, 1]) as tf.Tensor2D;
  const count = (seed: number) => {
    const out = half.apply(many, manyBoxes, new Rng(seed));
    const flipped = (out.boxes.arraySync() as number[][]).filter(([x1]) => x1 === 2).length;
    tf.dispose([out.images, out.boxes]);
    return flipped;
  };
  const flipped = count(3);
  assert.ok(flipped > 70 && flipped < 130, `${flipped} of 200 flipped`);
  assert.equal(count(3), flipped);
  const before = tf.memory().numTensors;
  count(4);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, b, same.images, same.boxes, many, manyBoxes]);
});
