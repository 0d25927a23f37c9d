import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';

import { mulberry32 } from '../../src/core/rng.ts';
import { fusedLinear, fusedVitBlock, useFusedKernels } from '../../src/engine/fused.ts';
import { block, type BlockParams, type GeluKind } from '../../plugins/backbone/vit/layers.ts';
import { Stream } from '../../plugins/backbone/vit/init.ts';
import { crossEntropy, softTargetCrossEntropy } from '../../src/train/losses.ts';
import { onNative } from './helpers.ts';

// The fused ViT block of the 'native' backend (one kernel forward, one backward) against the
// op-by-op block on the JS cpu backend: output and the gradient of x and of every parameter.

function random(n: number, seed: number, scale: number, offset = 0): Float32Array {
  const rand = mulberry32(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = offset + (rand() * 2 - 1) * scale;
  return v;
}

interface Case {
  batch: number;
  tokens: number;
  dim: number;
  heads: number;
  mlp: number;
  gelu: GeluKind;
}

const NAMES = [
  'x',
  'norm1.weight',
  'norm1.bias',
  'qkv.weight',
  'qkv.bias',
  'proj.weight',
  'proj.bias',
  'norm2.weight',
  'norm2.bias',
  'fc1.weight',
  'fc1.bias',
  'fc2.weight',
  'fc2.bias',
];

/** Block output and gradients of sum(y ⊙ dy) on the active backend, from values drawn in JS. */
function runBlock(c: Case, seed: number): Float32Array[] {
  const { batch, tokens, dim: D, mlp: M } = c;
  const shapes = [[batch * tokens, D], [D], [D], [D, 3 * D], [3 * D], [D, D], [D], [D], [D], [D, M], [M], [M, D], [D]];
  // LayerNorm weights around 1, biases and weights small, x with an offset so the norm matters.
  const scales = [2, 0.3, 0.2, 0.4, 0.2, 0.4, 0.2, 0.3, 0.2, 0.3, 0.2, 0.3, 0.2];
  const offsets = [0.5, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0];
  const before = tf.memory().numTensors;
  const inputs = shapes.map((s, i) =>
    tf.tensor(
      random(
        s.reduce((a, b) => a * b, 1),
        seed + i,
        scales[i]!,
        offsets[i]!,
      ),
      s,
    ),
  );
  const dy = tf.tensor(random(batch * tokens * D, seed + 99, 1), [batch * tokens, D]);
  const f = (...t: tf.Tensor[]) => {
    const p: BlockParams = {
      norm1: { weight: t[1] as tf.Variable, bias: t[2] as tf.Variable, eps: 1e-6 },
      qkv: { weight: t[3] as tf.Variable, bias: t[4] as tf.Variable },
      proj: { weight: t[5] as tf.Variable, bias: t[6] as tf.Variable },
      norm2: { weight: t[7] as tf.Variable, bias: t[8] as tf.Variable, eps: 1e-6 },
      fc1: { weight: t[9] as tf.Variable, bias: t[10] as tf.Variable },
      fc2: { weight: t[11] as tf.Variable, bias: t[12] as tf.Variable },
    };
    const noise = { training: true, stream: new Stream(1) };
    return block(t[0] as tf.Tensor2D, p, batch, { dim: D, heads: c.heads, gelu: c.gelu, dropout: 0, dropPath: 0 }, 0, noise);
  };
  const out = tf.tidy(() => {
    const y = f(...inputs);
    const grads = tf.grads((...t: tf.Tensor[]) => tf.sum(tf.mul(f(...t), dy)))(inputs);
    return [y, ...grads];
  });
  const values = out.map((t) => t.dataSync().slice() as Float32Array);
  tf.dispose([...out, ...inputs, dy]);
  expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  return values;
}

/** Element by element within rtol, entries near zero measured against the tensor's largest value. */
function expectClose(actual: Float32Array, expected: Float32Array, rtol: number, what: string): void {
  expect(actual.length, `${what}: length`).to.equal(expected.length);
  let scale = 0;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  expect(scale, `${what}: not all zero`).to.be.greaterThan(0);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!) / Math.max(Math.abs(expected[i]!), 1e-2 * scale);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  expect(worst, `${what}: largest relative difference (at ${at}: ${actual[at]} vs ${expected[at]})`).to.be.at.most(rtol);
}

describe('native fused ViT block', function () {
  this.timeout(120_000);
  onNative();

  const CASES: Case[] = [
    { batch: 1, tokens: 1, dim: 4, heads: 1, mlp: 8, gelu: 'erf' },
    { batch: 2, tokens: 5, dim: 8, heads: 2, mlp: 16, gelu: 'erf' },
    { batch: 3, tokens: 7, dim: 12, heads: 3, mlp: 20, gelu: 'tanh' },
    { batch: 4, tokens: 17, dim: 64, heads: 2, mlp: 256, gelu: 'erf' }, // the smoke scale's block with a class token
    { batch: 2, tokens: 64, dim: 192, heads: 3, mlp: 768, gelu: 'erf' }, // the bench shape's block
  ];

  // Against the cpu backend the tolerance grows with the width: OpenBLAS and the JS matmul round
  // their float32 sums differently (the op-by-op block on 'native' is as far from cpu as the
  // fused one); against the op-by-op block on 'native', the same products, it stays tight.
  for (const c of CASES) {
    const what = `batch ${c.batch}, ${c.tokens} tokens, dim ${c.dim}, ${c.heads} heads, MLP ${c.mlp}, ${c.gelu} GELU`;
    it(`matches the op-by-op block on cpu and on native: ${what}`, async () => {
      const seed = c.batch * 1000 + c.tokens * 10 + c.dim;
      await tf.setBackend('cpu');
      const ref = runBlock(c, seed);
      await tf.setBackend('native');
      const fused = runBlock(c, seed);
      const previousSetting = useFusedKernels(false);
      let unfused: Float32Array[];
      try {
        unfused = runBlock(c, seed);
      } finally {
        useFusedKernels(previousSetting);
      }
      const rtol = c.dim >= 128 ? 1e-3 : 2e-4;
      expectClose(fused[0]!, ref[0]!, rtol, 'y vs cpu');
      NAMES.forEach((name, i) => expectClose(fused[i + 1]!, ref[i + 1]!, rtol, `d ${name} vs cpu`));
      expectClose(fused[0]!, unfused[0]!, 1e-4, 'y vs native op by op');
      NAMES.forEach((name, i) => expectClose(fused[i + 1]!, unfused[i + 1]!, 1e-4, `d ${name} vs native op by op`));
    });
  }

  for (const [rows, inDim, outDim] of [
    [1, 1, 1],
    [7, 5, 3],
    [512, 192, 64],
    [32, 64, 7],
    [0, 4, 3],
  ]) {
    it(`fused linear [${rows}, ${inDim}]·[${inDim}, ${outDim}] + b: output and gradients as on cpu, in one kernel each way`, async () => {
      const seed = rows + inDim * 7 + outDim * 13;
      const make = () =>
        tf.tidy(() => [
          tf.tensor2d(random(rows * inDim, seed, 1), [rows, inDim]),
          tf.variable(tf.tensor2d(random(inDim * outDim, seed + 1, 0.5), [inDim, outDim])),
          tf.variable(tf.tensor1d(random(outDim, seed + 2, 0.5))),
          tf.tensor2d(random(rows * outDim, seed + 3, 1), [rows, outDim]),
        ]) as [tf.Tensor2D, tf.Variable, tf.Variable, tf.Tensor2D];
      const run = (fused: boolean) => {
        const [x, w, b, dy] = make();
        try {
          const f = (a: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => (fused ? fusedLinear(a as tf.Tensor2D, ww, bb)! : tf.add(tf.matMul(a, ww), bb));
          const out = tf.tidy(() => [f(x, w, b), ...tf.grads((a, ww, bb) => tf.sum(tf.mul(f(a, ww, bb), dy)))([x, w, b])]);
          const values = out.map((t) => t.dataSync().slice() as Float32Array);
          tf.dispose(out);
          return values;
        } finally {
          tf.dispose([x, w, b, dy]);
        }
      };
      await tf.setBackend('cpu');
      const before = tf.memory().numTensors;
      const ref = run(false);
      await tf.setBackend('native');
      const got = run(true);
      expect(tf.memory().numTensors).to.equal(before);
      if (rows === 0) {
        expect(got.map((g) => g.length)).to.deep.equal([0, 0, inDim * outDim, outDim]);
        expect([...got[2]!, ...got[3]!].every((v) => v === 0)).to.equal(true);
        return;
      }
      ['y', 'dx', 'dw', 'db'].forEach((n, i) => expectClose(got[i]!, ref[i]!, 1e-4, n));
      const info = await tf.profile(() => {
        const [x, w, b] = make();
        tf.tidy(() => tf.grads((a, ww, bb) => tf.sum(fusedLinear(a as tf.Tensor2D, ww, bb)!))([x, w, b]));
        tf.dispose([x, w, b]);
      });
      const names = info.kernels.map((k) => k.name);
      expect(names).to.include.members(['SsferLinear', 'SsferLinearGrad']);
      expect(names).to.not.include('BatchMatMul');
    });
  }

  it('fused softmax cross-entropy (hard labels with smoothing, soft targets): losses and gradients as on cpu', async () => {
    const run = () => {
      const logits = tf.tensor2d(random(13 * 7, 71, 8), [13, 7]); // wide logits: the row maximum matters
      const soft = tf.tidy(() => tf.softmax(tf.tensor2d(random(13 * 7, 72, 3), [13, 7])));
      const labels = Array.from({ length: 13 }, (_, i) => (i * 5) % 7);
      const dy = tf.tensor1d(random(13, 73, 1));
      try {
        const out = tf.tidy(() => {
          const hard = (z: tf.Tensor) => crossEntropy(z as tf.Tensor2D, labels, 7, 0.1);
          const mixed = (z: tf.Tensor, t: tf.Tensor) => softTargetCrossEntropy(z as tf.Tensor2D, t as tf.Tensor2D);
          return [
            hard(logits),
            tf.grad((z: tf.Tensor) => tf.sum(tf.mul(hard(z), dy)))(logits),
            mixed(logits, soft),
            ...tf.grads((z: tf.Tensor, t: tf.Tensor) => tf.sum(tf.mul(mixed(z, t), dy)))([logits, soft]),
          ];
        });
        const values = out.map((t) => t.dataSync().slice() as Float32Array);
        tf.dispose(out);
        return values;
      } finally {
        tf.dispose([logits, soft, dy]);
      }
    };
    await tf.setBackend('cpu');
    const ref = run();
    await tf.setBackend('native');
    const info = await tf.profile(() => {
      run();
    });
    const got = run();
    ['hard loss', 'd logits (hard)', 'soft loss', 'd logits (soft)', 'd targets'].forEach((n, i) => expectClose(got[i]!, ref[i]!, 1e-5, n));
    const names = info.kernels.map((k) => k.name);
    expect(names).to.include.members(['SsferSoftmaxCrossEntropy', 'SsferSoftmaxCrossEntropyGrad']);
    expect(names).to.not.include('logSoftmax__op');
  });

  it('runs as one kernel forward and one backward', async () => {
    await tf.setBackend('native');
    const c: Case = { batch: 2, tokens: 5, dim: 8, heads: 2, mlp: 16, gelu: 'erf' };
    const info = await tf.profile(() => {
      runBlock(c, 3);
    });
    const names = info.kernels.map((k) => k.name);
    expect(names.filter((n) => n === 'SsferVitBlock')).to.have.length(2); // the forward, and again under tf.grads
    expect(names.filter((n) => n === 'SsferVitBlockGrad')).to.have.length(1);
    expect(names).to.not.include('Softmax');
    expect(names).to.not.include('BatchMatMul');
  });

  it('is not used where it does not apply', async () => {
    await tf.setBackend('cpu');
    const x = tf.zeros([4, 8]) as tf.Tensor2D;
    const p = {
      norm1: { weight: tf.ones([8]), bias: tf.zeros([8]), eps: 1e-6 },
      qkv: { weight: tf.zeros([8, 24]), bias: tf.zeros([24]) },
      proj: { weight: tf.zeros([8, 8]), bias: tf.zeros([8]) },
      norm2: { weight: tf.ones([8]), bias: tf.zeros([8]), eps: 1e-6 },
      fc1: { weight: tf.zeros([8, 16]), bias: tf.zeros([16]) },
      fc2: { weight: tf.zeros([16, 8]), bias: tf.zeros([8]) },
    };
    try {
      expect(fusedVitBlock(x, p, 2, 2, 'erf'), 'no kernel on cpu').to.equal(null);
      await tf.setBackend('native');
      expect(fusedVitBlock(x, { ...p, qkv: { weight: p.qkv.weight, bias: null } }, 2, 2, 'erf'), 'no qkv bias').to.equal(null);
      const y = fusedVitBlock(x, p, 2, 2, 'erf');
      expect(y?.shape).to.deep.equal([4, 8]);
      y?.dispose();
      expect(() => fusedVitBlock(x, p, 3, 2, 'erf')).to.throw(/do not split into batch 3/);
    } finally {
      tf.dispose([x, ...Object.values(p).flatMap((l) => [l.weight, l.bias].filter((t): t is tf.Tensor => t !== null))]);
    }
  });
});
