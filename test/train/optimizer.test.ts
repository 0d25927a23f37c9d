import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { AdamW, defaultNoDecay } from '../../src/train/optimizer.ts';

describe('AdamW', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  function setup() {
    const w: tf.Variable = tf.variable(tf.tensor2d([[1]]), true); // decayed (rank 2)
    const b: tf.Variable = tf.variable(tf.tensor1d([1]), true); // exempt (rank 1)
    const opt = new AdamW(
      new Map<string, tf.Variable>([
        ['layer.weight', w],
        ['layer.bias', b],
      ]),
      { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 },
    );
    const grads = (g: number) =>
      new Map<tf.Variable, tf.Tensor>([
        [w, tf.tensor2d([[g]])],
        [b, tf.tensor1d([g])],
      ]);
    const step = (g: number, lr: number) => {
      const gs = grads(g);
      opt.step(gs, lr);
      tf.dispose([...gs.values()]);
    };
    return { w, b, opt, step, dispose: () => (opt.dispose(), w.dispose(), b.dispose()) };
  }

  it('matches two hand-computed steps, with decay only on the matrix', () => {
    const s = setup();
    try {
      expect(s.opt.decayedNames()).to.deep.equal(['layer.weight']);
      // Step 1, g = 0.5, lr = 0.1: m = 0.05, v = 2.5e-4, m̂ = 0.5, √v̂ = 0.5 → Adam step 0.1·0.5/(0.5 + 1e-8)
      //   weight: 1·(1 − 0.1·0.01) − 0.099999998 = 0.899000002;  bias: 1 − 0.099999998 = 0.900000002
      s.step(0.5, 0.1);
      expect(s.w.dataSync()[0]).to.be.closeTo(0.899000002, 1e-7);
      expect(s.b.dataSync()[0]).to.be.closeTo(0.900000002, 1e-7);
      // Step 2, g = −1, lr = 0.05: m = −0.055, v = 0.00124975, m̂ = −0.055/0.19, v̂ = 0.00124975/0.001999
      //   Adam step 0.05·m̂/(√v̂ + 1e-8) = −0.018305176;  weight: 0.899000002·(1 − 0.0005) + 0.018305176
      s.step(-1, 0.05);
      expect(s.w.dataSync()[0]).to.be.closeTo(0.916855678, 1e-6);
      expect(s.b.dataSync()[0]).to.be.closeTo(0.918305178, 1e-6);
      expect(s.opt.stepCount).to.equal(2);
    } finally {
      s.dispose();
    }
  });

  it("scales a weight's rate and its decay by lrScale, as a PyTorch parameter group with that lr", () => {
    const w: tf.Variable = tf.variable(tf.tensor2d([[1]]), true);
    const b: tf.Variable = tf.variable(tf.tensor1d([1]), true);
    const opt = new AdamW(
      new Map<string, tf.Variable>([
        ['layer.weight', w],
        ['layer.bias', b],
      ]),
      { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01, lrScale: (name) => (name === 'layer.weight' ? 0.5 : 1) },
    );
    const grads = new Map<tf.Variable, tf.Tensor>([
      [w, tf.tensor2d([[0.5]])],
      [b, tf.tensor1d([0.5])],
    ]);
    try {
      // g = 0.5, lr = 0.1: the weight at 0.05: 1·(1 − 0.05·0.01) − 0.05·0.5/(0.5 + 1e-8) = 0.949500001; the bias at 0.1 as above
      opt.step(grads, 0.1);
      expect(w.dataSync()[0]).to.be.closeTo(0.949500001, 1e-7);
      expect(b.dataSync()[0]).to.be.closeTo(0.900000002, 1e-7);
      expect(() => new AdamW(new Map([['x', w]]), { lrScale: () => 0 })).to.throw("the learning-rate scale of 'x' is 0");
    } finally {
      tf.dispose([...grads.values()]);
      opt.dispose();
      w.dispose();
      b.dispose();
    }
  });

  it('resumes exactly from its saved state', () => {
    const a = setup();
    const b = setup();
    try {
      a.step(0.5, 0.1);
      b.step(0.5, 0.1);
      const state = a.opt.state();
      const weights = [tf.clone(a.w), tf.clone(a.b)];
      a.step(-1, 0.05);
      a.step(0.25, 0.05);
      // b continues from a's saved state, as a restarted run would.
      b.w.assign(weights[0]!);
      b.b.assign(weights[1]!);
      b.opt.loadState(state);
      b.step(-1, 0.05);
      b.step(0.25, 0.05);
      expect(b.w.dataSync()[0]).to.equal(a.w.dataSync()[0]);
      expect(b.b.dataSync()[0]).to.equal(a.b.dataSync()[0]);
      expect(b.opt.stepCount).to.equal(3);
      expect(Object.keys(state).sort()).to.deep.equal(['m.layer.bias', 'm.layer.weight', 'step', 'v.layer.bias', 'v.layer.weight']);
      tf.dispose([...Object.values(state), ...weights]);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('refuses a state of the wrong shape, naming it', () => {
    const s = setup();
    try {
      const bad = {
        step: tf.scalar(1, 'int32'),
        'm.layer.weight': tf.zeros([2, 2]),
        'v.layer.weight': tf.zeros([1, 1]),
        'm.layer.bias': tf.zeros([1]),
        'v.layer.bias': tf.zeros([1]),
      };
      expect(() => s.opt.loadState(bad)).to.throw(/'m\.layer\.weight' has shape \[2,2\] but the weight has \[1,1\]/);
      tf.dispose(Object.values(bad));
    } finally {
      s.dispose();
    }
  });

  it('accepts gradients keyed by tfjs variable name (tf.variableGrads) and keeps memory flat', () => {
    const w = tf.variable(tf.randomNormal([4, 3], 0, 1, 'float32', 1), true);
    const x = tf.randomNormal([5, 4], 0, 1, 'float32', 2);
    const opt = new AdamW({ w });
    try {
      const loss = () => tf.sum(tf.square(tf.matMul(x, w))) as tf.Scalar;
      const first = opt.minimize(loss, 0.05);
      const count = tf.memory().numTensors;
      let last = first;
      for (let i = 0; i < 20; i++) last = opt.minimize(loss, 0.05);
      expect(tf.memory().numTensors).to.equal(count);
      expect(last).to.be.below(first * 0.5);
    } finally {
      opt.dispose();
      w.dispose();
      x.dispose();
    }
  });

  it('releases every tensor it made on dispose', () => {
    const w = tf.variable(tf.ones([3, 2]), true);
    const baseline = tf.memory().numTensors;
    const opt = new AdamW({ w });
    opt.minimize(() => tf.sum(tf.square(w)) as tf.Scalar, 0.1);
    const state = opt.state();
    tf.dispose(Object.values(state));
    opt.dispose();
    expect(tf.memory().numTensors).to.equal(baseline);
    w.dispose();
  });

  it('exempts biases, norms, class token and positions from decay by default', () => {
    const v = (shape: number[]) => ({ shape }) as unknown as tf.Variable;
    expect(defaultNoDecay('blocks.0.attn.qkv.bias', v([9]))).to.equal(true);
    expect(defaultNoDecay('cls_token', v([1, 1, 8]))).to.equal(true);
    expect(defaultNoDecay('decoder.pos_embed', v([1, 5, 8]))).to.equal(true);
    expect(defaultNoDecay('blocks.0.attn.qkv.weight', v([8, 24]))).to.equal(false);
  });
});
