// Tests of the convex mix-loss plugin, with Node's test runner: ssfer test convex.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPlugin, tf } from 'ssfer';
import plugin from './convex.ts';

test('convex: (1 − κ)·L_v + κ·w·(L_i + L_j), worked out by hand', async () => {
  const loss = await createPlugin(plugin, { real_weight: 0.5 });
  const [lv, li, lj, kappa] = [
    [1, 2, 4],
    [3, 4, 2],
    [5, 6, 2],
    [0, 0.5, 1],
  ].map((v) => tf.tensor1d(v));
  const combined = loss.combine(lv!, li!, lj!, kappa!);
  // κ = 0: L_v = 1;  κ = 0.5: 0.5·2 + 0.25·10 = 3.5;  κ = 1: 0.5·4 = 2.
  assert.deepEqual(Array.from(combined.dataSync()), [1, 3.5, 2]);
  tf.dispose([lv!, li!, lj!, kappa!, combined]);
});

test('convex: the default weight is 0.5, and nothing is left behind', async () => {
  const loss = await createPlugin(plugin, {});
  const ones = tf.ones([2]) as tf.Tensor1D;
  const before = tf.memory().numTensors;
  const combined = loss.combine(ones, ones, ones, ones);
  assert.deepEqual(Array.from(combined.dataSync()), [1, 1]);
  combined.dispose();
  assert.equal(tf.memory().numTensors, before);
  ones.dispose();
});
