// Tests of the pseudo-label ssl plugin, with Node's test runner: ssfer test pseudo-label.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPlugin, tf, type CellState } from 'ssfer';
import plugin from './pseudo-label.ts';

/** A small cell as the core hands it to a stage: built-in plugins draw the data and build the model. */
async function cell(): Promise<CellState> {
  const dataset = await createPlugin('dataset', { use: 'synthetic-faces' });
  const data = await dataset.load({ imageSize: 16, trainSize: 42, testSize: 14 });
  const backbone = await createPlugin('backbone', { use: 'linear', image_size: 16, standardise: 'none' });
  const all = Int32Array.from({ length: data.train.size }, (_, i) => i);
  return {
    model: backbone.build(data.classes.length, 1),
    buildCopy: () => backbone.build(data.classes.length, 1, { trainable: false }),
    data,
    labeled: all.filter((i) => i % 3 === 0),
    unlabeled: all.filter((i) => i % 3 !== 0),
    labels: data.train.labels,
    boxes: data.train.boxes,
    seed: 7,
  };
}

const weightsOf = (c: CellState) => [...c.model.namedVariables().values()].map((v) => Array.from(v.dataSync()));

test('pseudo-label: trains the model in place for the steps it was given, and says how it went', async () => {
  const c = await cell();
  const stage = await createPlugin(plugin, { epochs: 2, max_steps: 3, batch_size: 8 });
  const before = weightsOf(c);
  const tensors = tf.memory().numTensors;
  const steps: number[] = [];
  const result = await stage.run(c, { onStep: (log) => steps.push(log.step) });
  assert.deepEqual(steps, [1, 2, 3]);
  assert.equal(result.steps, 3);
  assert.notDeepEqual(weightsOf(c), before);
  const rate = result.health!.mask_rate_last!;
  assert.ok(rate >= 0 && rate <= 1, `mask rate ${rate}`);
  assert.ok(Number.isFinite(result.health!.loss_last));
  assert.equal(tf.memory().numTensors, tensors);
  c.model.dispose();
});

test('pseudo-label: τ = 0 takes every prediction, τ = 1 none; the same seed gives the same weights', async () => {
  const rates = [];
  const weights = [];
  for (const threshold of [0, 1, 1]) {
    const c = await cell();
    const result = await (await createPlugin(plugin, { epochs: 1, max_steps: 2, batch_size: 8, threshold })).run(c, {});
    rates.push(result.health!.mask_rate_last);
    weights.push(weightsOf(c));
    c.model.dispose();
  }
  assert.deepEqual(rates, [1, 0, 0]);
  assert.deepEqual(weights[1], weights[2]);
  assert.notDeepEqual(weights[0], weights[1]);
});

test('pseudo-label: a cell without unlabeled images is left alone', async () => {
  const c = { ...(await cell()), unlabeled: new Int32Array(0) };
  const result = await (await createPlugin(plugin, {})).run(c, {});
  assert.match(result.summary, /nothing to do/);
  c.model.dispose();
});
