// Tests of the balanced sampler plugin, with Node's test runner: ssfer test balanced.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPlugin, Rng } from 'ssfer';
import plugin from './balanced.ts';

// 3 classes with 10, 4 and 6 images, in a mixed order.
const labels = Int32Array.from([...Array(10).fill(0), ...Array(4).fill(1), ...Array(6).fill(2)]);
new Rng(0).shuffle(labels);

test('balanced: per_class labels in every class (all of a smaller class), the rest unlabeled', async () => {
  const sampler = await createPlugin(plugin, { per_class: 5 });
  const split = sampler.split(labels, 3, new Rng(1));
  const kept = [0, 1, 2].map((c) => Array.from(split.labeled).filter((i) => labels[i] === c).length);
  assert.deepEqual(kept, [5, 4, 5]);
  // Every training image is either labeled or unlabeled, never both.
  assert.deepEqual(
    [...split.labeled, ...split.unlabeled].sort((a, b) => a - b),
    Array.from({ length: 20 }, (_, i) => i),
  );
  assert.equal(sampler.budget, '5 labels/class');
});

test('balanced: the same stream draws the same labels, another stream others', async () => {
  const sampler = await createPlugin(plugin, { per_class: 2 });
  const a = sampler.split(labels, 3, new Rng(1));
  assert.deepEqual(sampler.split(labels, 3, new Rng(1)), a);
  assert.notDeepEqual(sampler.split(labels, 3, new Rng(2)).labeled, a.labeled);
});
