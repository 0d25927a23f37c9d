import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';

import { AdamW } from '../../src/train/optimizer.ts';
import { onNative, randomOfShape } from './helpers.ts';

// The fused AdamW kernel of the 'native' backend against the unfused tfjs ops of AdamW.step.

const KERNEL = 'SsferAdamW';

// A decayed matrix large enough to be split across threads, an exempt bias and an exempt token.
const SHAPES: Record<string, number[]> = { 'block.fc.weight': [96, 640], 'block.fc.bias': [37], cls_token: [1, 1, 8] };
const LRS = [1e-3, 5e-4, 2e-3];

interface Outcome {
  values: Record<string, Float32Array>;
  kernels: string[];
}

async function run(weightDecay: number, lrScale?: (name: string) => number): Promise<Outcome> {
  const before = tf.memory().numTensors;
  const params = new Map<string, tf.Variable>();
  let seed = 11;
  for (const [name, shape] of Object.entries(SHAPES)) {
    const init = tf.tensor(randomOfShape(shape, seed++, 1), shape);
    params.set(name, tf.variable(init, true));
    init.dispose();
  }
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay, ...(lrScale ? { lrScale } : {}) });
  const kernels = new Set<string>();
  for (let step = 0; step < LRS.length; step++) {
    const grads = new Map<tf.Variable, tf.Tensor>();
    for (const p of params.values()) grads.set(p, tf.tensor(randomOfShape(p.shape, 1000 * (step + 1) + seed++, step === 1 ? 1e-3 : 2), p.shape));
    const info = await tf.profile(() => opt.step(grads, LRS[step]!));
    for (const k of info.kernels) kernels.add(k.name);
    tf.dispose([...grads.values()]);
  }
  const values: Record<string, Float32Array> = {};
  for (const [name, p] of params) values[name] = p.dataSync().slice() as Float32Array;
  const state = opt.state();
  for (const [key, t] of Object.entries(state)) if (key !== 'step') values[key] = t.dataSync().slice() as Float32Array;
  tf.dispose(Object.values(state));
  opt.dispose();
  for (const p of params.values()) p.dispose();
  expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  return { values, kernels: [...kernels] };
}

function expectClose(got: Record<string, Float32Array>, want: Record<string, Float32Array>): void {
  expect(Object.keys(got).sort()).to.deep.equal(Object.keys(want).sort());
  for (const key of Object.keys(want)) {
    const a = got[key]!;
    const b = want[key]!;
    expect(a.length, key).to.equal(b.length);
    let worst = 0;
    for (let i = 0; i < b.length; i++) {
      const err = Math.abs(a[i]! - b[i]!) / Math.max(Math.abs(b[i]!), 1e-30);
      if (!(err <= worst)) worst = err;
    }
    expect(worst, `${key}: largest relative difference`).to.be.at.most(1e-6);
  }
}

describe('native fused AdamW', function () {
  onNative({ select: true });

  /** Runs `fn` with the fused kernel unregistered, so AdamW takes its tfjs-ops path. */
  async function withoutFused<T>(fn: () => Promise<T>): Promise<T> {
    const config = tf.getKernel(KERNEL, 'native');
    expect(config, 'fused kernel registered').to.not.equal(undefined);
    tf.unregisterKernel(KERNEL, 'native');
    try {
      return await fn();
    } finally {
      tf.registerKernel(config);
    }
  }

  for (const weightDecay of [0.05, 0]) {
    it(`matches the unfused ops over 3 steps (weight decay ${weightDecay})`, async () => {
      const fused = await run(weightDecay);
      const unfused = await withoutFused(() => run(weightDecay));
      expect(fused.kernels).to.include(KERNEL);
      expect(fused.kernels).to.not.include('Multiply');
      expect(unfused.kernels).to.not.include(KERNEL);
      expectClose(fused.values, unfused.values);
    });
  }

  it('matches the unfused ops with a learning rate per weight (layer decay)', async () => {
    const scales: Record<string, number> = { 'block.fc.weight': 0.75, 'block.fc.bias': 0.75, cls_token: 0.5625 };
    const lrScale = (name: string) => scales[name]!;
    const fused = await run(0.05, lrScale);
    const unfused = await withoutFused(() => run(0.05, lrScale));
    expectClose(fused.values, unfused.values);
    // and the scales took effect: one rate for all moves the weights otherwise
    const plain = await withoutFused(() => run(0.05));
    expect(Math.abs(plain.values['cls_token']![0]! - unfused.values['cls_token']![0]!)).to.be.above(1e-4);
  });

  it('updates in one call, in place, every weight nothing else sees', async () => {
    const params = new Map(
      Object.entries(SHAPES).map(([name, shape], i) => [name, tf.tidy(() => tf.variable(tf.tensor(randomOfShape(shape, i + 1, 1), shape)))]),
    );
    const opt = new AdamW(params, { weightDecay: 0.05 });
    const gradsFor = (seed: number) => new Map([...params.values()].map((p, i) => [p, tf.tensor(randomOfShape(p.shape, seed + i, 1), p.shape)] as const));
    try {
      // The first step replaces the weights made from JS arrays by buffers of the kernels' own.
      let grads = gradsFor(100);
      opt.step(grads, 1e-3);
      tf.dispose([...grads.values()]);
      const [w, bias, token] = [...params.values()] as [tf.Variable, tf.Variable, tf.Variable];
      const held = w.dataSync(); // the caller keeps the backend's own array
      const heldCopy = held.slice();
      const clone = tf.clone(bias); // another tensor on the same buffer
      const cloneBefore = clone.dataSync().slice();
      const tokenBefore = token.dataSync().slice();
      grads = gradsFor(200);
      const info = await tf.profile(() => opt.step(grads, 1e-3));
      tf.dispose([...grads.values()]);
      const kernels = info.kernels.map((k) => k.name);
      expect(kernels.filter((k) => k === 'SsferAdamWInPlace')).to.have.length(1);
      // Read out or shared weights were updated into new buffers, one call each.
      expect(kernels.filter((k) => k === KERNEL)).to.have.length(3);
      expect(Array.from(held)).to.deep.equal(Array.from(heldCopy));
      expect(Array.from(clone.dataSync())).to.deep.equal(Array.from(cloneBefore));
      expect(Array.from(token.dataSync())).to.not.deep.equal(Array.from(tokenBefore));
      expect(Array.from(w.dataSync())).to.not.deep.equal(Array.from(heldCopy));
      clone.dispose();
      // Now nothing sees the new buffers but the weights: the next step is in place for all.
      for (const p of params.values()) {
        const fresh = tf.add(p, 0);
        p.assign(fresh);
        fresh.dispose();
      }
      grads = gradsFor(300);
      const next = await tf.profile(() => opt.step(grads, 1e-3));
      tf.dispose([...grads.values()]);
      expect(next.kernels.map((k) => k.name)).to.deep.equal(['SsferAdamWInPlace']);
    } finally {
      opt.dispose();
      for (const p of params.values()) p.dispose();
    }
  });

  it('rejects inputs of different shapes', () => {
    const [p, g, m, v] = [[4], [5], [4], [4]].map((s) => tf.zeros(s));
    expect(() =>
      tf.engine().runKernel(KERNEL, { param: p!, grad: g!, m: m!, v: v! }, { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, step: 1 }),
    ).to.throw(/differ/);
    tf.dispose([p!, g!, m!, v!]);
  });
});
