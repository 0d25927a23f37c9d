import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';

import { mulberry32 } from '../../src/core/rng.ts';
import type { PluginContext } from '../../src/core/plugin.ts';
import vitPlugin from '../../plugins/backbone/vit.ts';
import { gelu, layerNorm, useFusedLayers, type Norm } from '../../plugins/backbone/vit/layers.ts';
import { onNative } from './helpers.ts';

// The fused LayerNorm and GELU kernels of the 'native' backend against the op-by-op path.

const KERNELS = ['SsferLayerNorm', 'SsferLayerNormGrad', 'SsferGelu', 'SsferGeluGrad'];
const RTOL = 1e-5;

function random(n: number, seed: number, scale: number, offset = 0): Float32Array {
  const rand = mulberry32(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = offset + (rand() * 2 - 1) * scale;
  return v;
}

/** Element by element within RTOL relative (entries near zero measured against the tensor's scale). */
function expectClose(actual: Float32Array, expected: Float32Array, what: string, rtol = RTOL): void {
  expect(actual.length, `${what}: length`).to.equal(expected.length);
  let scale = 0;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const a = actual[i]!;
    expect(Number.isFinite(a), `${what}[${i}] finite`).to.equal(Number.isFinite(e));
    const d = Math.abs(a - e) / Math.max(Math.abs(e), 1e-3 * scale, 1e-30);
    worst = Math.max(worst, d);
  }
  expect(worst, `${what}: largest relative difference`).to.be.at.most(rtol);
}

/** Runs fn once fused and once op by op; returns both results as arrays, leaving no tensors behind. */
function both(fn: () => tf.Tensor[]): { fusedOut: Float32Array[]; refOut: Float32Array[] } {
  const run = (on: boolean) => {
    const before = tf.memory().numTensors;
    const previous = useFusedLayers(on);
    try {
      const out = tf.tidy(fn);
      const values = out.map((t) => t.dataSync() as Float32Array);
      tf.dispose(out);
      expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
      return values;
    } finally {
      useFusedLayers(previous);
    }
  };
  return { fusedOut: run(true), refOut: run(false) };
}

/** Names of the kernels run inside fn. */
async function kernelsRun(fn: () => void): Promise<Set<string>> {
  const info = await tf.profile(() => {
    fn();
    return [] as tf.Tensor[];
  });
  return new Set(info.kernels.map((k) => k.name));
}

describe('native fused LayerNorm and GELU', function () {
  onNative({ select: true });
  before(function () {
    for (const k of KERNELS) expect(tf.getKernel(k, 'native'), `${k} registered`).to.not.equal(undefined);
  });

  const SHAPES: [number, number][] = [
    [1, 1],
    [1, 7],
    [3, 1],
    [5, 37],
    [17, 193],
    [300, 97],
    [197, 192],
    [0, 13],
  ];

  for (const [rows, cols] of SHAPES) {
    it(`LayerNorm forward and gradients agree on [${rows}, ${cols}]`, () => {
      const seed = rows * 1000 + cols;
      const x = tf.tensor2d(random(rows * cols, seed, 3, 0.5), [rows, cols]);
      const dy = tf.tensor2d(random(rows * cols, seed + 1, 1), [rows, cols]);
      const norm: Norm = {
        weight: tf.variable(tf.tensor1d(random(cols, seed + 2, 1, 1))),
        bias: tf.variable(tf.tensor1d(random(cols, seed + 3, 0.5))),
        eps: 1e-6,
      };
      try {
        const { fusedOut, refOut } = both(() => {
          const f = (a: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
            layerNorm(a as tf.Tensor2D, { weight: w as tf.Variable, bias: b as tf.Variable, eps: norm.eps });
          const y = f(x, norm.weight, norm.bias);
          const grads = tf.grads((a, w, b) => tf.mul(f(a, w, b), dy))([x, norm.weight, norm.bias]);
          return [y, ...grads];
        });
        ['y', 'dx', 'dgamma', 'dbeta'].forEach((name, i) => expectClose(fusedOut[i]!, refOut[i]!, name));
      } finally {
        tf.dispose([x, dy, norm.weight, norm.bias]);
      }
    });
  }

  for (const shape of [[1], [0], [7, 1], [13, 37], [301, 257]]) {
    it(`GELU forward and gradient agree on [${shape}]`, () => {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = tf.tensor(random(n, n + 5, 6), shape);
      const dy = tf.tensor(random(n, n + 6, 1), shape);
      try {
        const { fusedOut, refOut } = both(() => {
          const y = gelu(x, 'erf');
          const [dx] = tf.grads((a) => tf.mul(gelu(a, 'erf'), dy))([x]);
          return [y, dx!];
        });
        ['y', 'dx'].forEach((name, i) => expectClose(fusedOut[i]!, refOut[i]!, name));
      } finally {
        tf.dispose([x, dy]);
      }
    });
  }

  it('runs the fused kernels only when enabled', async () => {
    const x = tf.tensor2d(random(6 * 10, 1, 1), [6, 10]);
    const norm: Norm = { weight: tf.variable(tf.ones([10])), bias: tf.variable(tf.zeros([10])), eps: 1e-5 };
    try {
      const step = () => {
        tf.tidy(() => tf.grads((a) => gelu(layerNorm(a as tf.Tensor2D, norm), 'erf'))([x]));
      };
      const on = await kernelsRun(step);
      const previousSetting = useFusedLayers(false);
      let off: Set<string>;
      try {
        off = await kernelsRun(step);
      } finally {
        useFusedLayers(previousSetting);
      }
      for (const k of KERNELS) {
        expect(on.has(k), `${k} used`).to.equal(true);
        expect(off.has(k), `${k} not used`).to.equal(false);
      }
    } finally {
      tf.dispose([x, norm.weight, norm.bias]);
    }
  });

  it('a tiny ViT gives the same logits and gradients either way', () => {
    const ctx: PluginContext = {
      seed: 7,
      scale: 'smoke',
      recipeDir: '.',
      resolve() {
        throw new Error('not used');
      },
    };
    const model = vitPlugin.create({ dim: 32, depth: 2, heads: 2, mlp_ratio: 2, image_size: 16, patch_size: 4, dropout: 0 }, ctx).build(3, 1);
    const images = tf.randomUniform([3, 16, 16, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    const vars = model.trainableVariables();
    try {
      const { fusedOut, refOut } = both(() => {
        const logits = model.logits(images);
        const { grads } = tf.variableGrads(() => tf.sum(tf.square(model.logits(images))) as tf.Scalar, vars);
        return [logits, ...vars.map((v) => grads[v.name]!)];
      });
      expect(fusedOut.length).to.equal(vars.length + 1);
      // The fused path runs each block as one kernel too (its own products and sums: test/native/fused-block.test.ts).
      fusedOut.forEach((f, i) => expectClose(f, refOut[i]!, i === 0 ? 'logits' : `grad of ${vars[i - 1]!.name}`, 1e-4));
    } finally {
      images.dispose();
      model.dispose();
    }
  });
});
