// Tests of the mlp backbone plugin, with Node's test runner: ssfer test mlp.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPlugin, tf } from 'ssfer';
import plugin from './mlp.ts';

test('mlp: logits of the right shape, and as many weights as parameterCount says', async () => {
  const factory = await createPlugin(plugin, { image_size: 8, hidden: 5 });
  const model = factory.build(3, 1);
  const images = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const logits = model.logits(images);
  assert.deepEqual(logits.shape, [2, 3]);
  const weights = [...model.namedVariables().values()].reduce((n, v) => n + v.size, 0);
  assert.equal(weights, factory.parameterCount(3).total);
  assert.equal(weights, 8 * 8 * 3 * 5 + 5 + 5 * 3 + 3);
  assert.throws(() => model.logits(tf.zeros([1, 4, 4, 3]) as tf.Tensor4D), /the model takes 8×8/);
  tf.dispose([images, logits]);
  model.dispose();
});

test('mlp: the same seed builds the same model; state() and loadState() carry it over', async () => {
  const factory = await createPlugin(plugin, { image_size: 8, hidden: 5 });
  const [a, b, c] = [factory.build(3, 1), factory.build(3, 1), factory.build(3, 2)];
  const images = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
  const [la, lb, lc] = [a.logits(images), b.logits(images), c.logits(images)];
  assert.deepEqual(la.arraySync(), lb.arraySync());
  assert.notDeepEqual(la.arraySync(), lc.arraySync());
  const state = a.state();
  c.loadState(state);
  const loaded = c.logits(images);
  assert.deepEqual(loaded.arraySync(), la.arraySync());
  // A record that does not fit is refused, and the weights stay as they were.
  const wrong = { ...state, 'head.bias': tf.zeros([4]) };
  assert.throws(() => b.loadState(wrong), /head\.bias/);
  tf.dispose([images, la, lb, lc, loaded, ...Object.values(wrong), ...Object.values(state)]);
  for (const m of [a, b, c]) m.dispose();
});

test('mlp: a copy built with trainable false has no trainable weights; dispose frees every weight', async () => {
  const factory = await createPlugin(plugin, { image_size: 8, hidden: 5 });
  const before = tf.memory().numTensors;
  const copy = factory.build(3, 1, { trainable: false });
  assert.equal(copy.trainableVariables().length, 0);
  assert.equal(copy.headVariables().length, 2);
  copy.dispose();
  assert.equal(tf.memory().numTensors, before);
});
