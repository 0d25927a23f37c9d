import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';

import { Ema } from '../../src/train/ema.ts';
import { onNative, randomOfShape } from './helpers.ts';

// The in-place EMA kernel of the 'native' backend against the tfjs ops it replaces.

const KERNEL = 'SsferEmaInPlace';
// The first is larger than the native loop's piece of 16384 floats, so it is split into two pieces (one short).
const SHAPES: Record<string, number[]> = { 'block.fc.weight': [160, 129], 'block.fc.bias': [37], cls_token: [1, 1, 8] };

const variables = (seed: number, scale: number) =>
  new Map(Object.entries(SHAPES).map(([name, shape], i) => [name, tf.tidy(() => tf.variable(tf.tensor(randomOfShape(shape, seed + i, scale), shape)))]));

/**
 * Averages into a copy while the trained weights move: copy(), then per round new weights and one
 * update. Returns the averages' values and the kernels each update ran.
 */
async function run(decays: number[]): Promise<{ values: Float32Array[]; kernels: string[][] }> {
  const before = tf.memory().numTensors;
  const target = variables(1, 1);
  const source = variables(100, 1);
  const ema = new Ema(target, source, 0.98);
  ema.copy();
  const kernels: string[][] = [];
  for (const [round, d] of decays.entries()) {
    for (const [name, v] of source) {
      const next = tf.tensor(randomOfShape(v.shape, 1000 * (round + 1) + name.length, 2), v.shape);
      v.assign(next);
      next.dispose();
    }
    const info = await tf.profile(() => ema.update(d));
    kernels.push(info.kernels.map((k) => k.name));
  }
  const values = [...target.values()].map((v) => v.dataSync().slice() as Float32Array);
  for (const v of [...target.values(), ...source.values()]) v.dispose();
  expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  return { values, kernels };
}

describe('native in-place EMA', function () {
  onNative();

  it('moves every average in one call, to the bit as the tfjs ops of the JS cpu backend', async () => {
    const decays = [0.98, 0.999, 0.5, 0];
    await tf.setBackend('native');
    const native = await run(decays);
    await tf.setBackend('cpu');
    const cpu = await run(decays);
    // The first update follows copy(), which leaves each average on its weight's buffer: the
    // kernel moves none of them, and each goes op by op (two products each).
    expect(native.kernels[0]!.filter((k) => k === 'Multiply')).to.have.length(2 * Object.keys(SHAPES).length);
    // Then each average has a buffer of its own: one call, no other kernel.
    for (const k of native.kernels.slice(1)) expect(k).to.deep.equal([KERNEL]);
    expect(cpu.kernels.flat()).to.not.include(KERNEL);
    native.values.forEach((v, i) => expect(Array.from(v), Object.keys(SHAPES)[i]).to.deep.equal(Array.from(cpu.values[i]!)));
  });

  it('leaves alone an average that something else sees', async () => {
    await tf.setBackend('native');
    const target = variables(1, 1);
    const source = variables(100, 1);
    const ema = new Ema(target, source, 0.9);
    try {
      ema.copy();
      ema.update(); // each average now has a buffer of its own
      const [w, bias] = [...target.values()] as [tf.Variable, tf.Variable];
      const held = w.dataSync(); // the caller keeps the backend's own array
      const heldCopy = held.slice();
      const clone = tf.clone(bias); // another tensor on the same buffer
      const cloneBefore = clone.dataSync().slice();
      const info = await tf.profile(() => ema.update());
      expect(info.kernels.filter((k) => k.name === KERNEL)).to.have.length(1);
      expect(info.kernels.map((k) => k.name)).to.include('Multiply');
      expect(Array.from(held)).to.deep.equal(Array.from(heldCopy));
      expect(Array.from(clone.dataSync())).to.deep.equal(Array.from(cloneBefore));
      expect(Array.from(w.dataSync())).to.not.deep.equal(Array.from(heldCopy));
      clone.dispose();
    } finally {
      for (const v of [...target.values(), ...source.values()]) v.dispose();
    }
  });
});
