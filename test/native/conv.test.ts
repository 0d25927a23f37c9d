import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';

import { mulberry32 } from '../../src/core/rng.ts';
import { nativeFallbackCounts, resetNativeFallbackCounts } from '../../src/native/index.ts';
import { onNative } from './helpers.ts';

// Convolution, pooling and batch-normalisation kernels of the 'native' backend against the JS
// cpu backend: outputs and gradients (through tf.grads, so the backprop kernels run), on the
// shapes CNN backbones use (ResNet's 7×7/2 stem, 3×3 and 1×1 convolutions with stride 2,
// MobileNet's depthwise convolutions).

function random(n: number, seed: number, scale = 1): Float32Array {
  const rand = mulberry32(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (rand() * 2 - 1) * scale;
  return v;
}

function tensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  return tf.tensor(
    random(
      shape.reduce((a, b) => a * b, 1),
      seed,
      scale,
    ),
    shape,
  );
}

/**
 * Element by element within rtol; an entry below `floor` times the largest magnitude is measured
 * against that instead of its own size (near zero its size says nothing of its rounding).
 */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rtol = 1e-5, floor = 1e-3): void {
  expect(actual.length, `${what}: length`).to.equal(expected.length);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!) / Math.max(Math.abs(expected[i]!), floor * scale, 1e-30);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  expect(worst, `${what}: largest relative difference (at ${at}: ${actual[at]} vs ${expected[at]})`).to.be.at.most(rtol);
}

/** fn's outputs on the cpu backend and on the given one, as arrays; no tensors left behind. */
async function onBoth(backend: string, fn: () => tf.Tensor[]): Promise<{ ref: Float32Array[]; got: Float32Array[] }> {
  const run = async (b: string) => {
    await tf.setBackend(b);
    const before = tf.memory().numTensors;
    const out = tf.tidy(fn);
    const values = out.map((t) => t.dataSync().slice() as Float32Array);
    tf.dispose(out);
    expect(tf.memory().numTensors, `tensors left behind on ${b}`).to.equal(before);
    return values;
  };
  return { ref: await run('cpu'), got: await run(backend) };
}

interface ConvCase {
  x: [number, number, number, number];
  k: number;
  out: number;
  stride: number;
  pad: 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
  dilation?: number;
}

const CONVS: ConvCase[] = [
  { x: [2, 7, 7, 3], k: 3, out: 4, stride: 1, pad: 'same' },
  { x: [2, 8, 8, 4], k: 3, out: 5, stride: 2, pad: 'same' },
  { x: [1, 9, 9, 2], k: 5, out: 3, stride: 2, pad: 'valid' },
  { x: [2, 5, 5, 6], k: 1, out: 7, stride: 1, pad: 'valid' }, // a 1×1 convolution: one GEMM
  { x: [3, 7, 7, 8], k: 1, out: 6, stride: 2, pad: 'same' }, // ResNet's downsampling shortcut
  {
    x: [2, 6, 5, 3],
    k: 3,
    out: 2,
    stride: 1,
    pad: [
      [0, 0],
      [1, 2],
      [2, 0],
      [0, 0],
    ],
  },
  { x: [2, 32, 32, 3], k: 7, out: 8, stride: 2, pad: 'same' }, // ResNet's stem
  { x: [2, 16, 16, 16], k: 3, out: 32, stride: 1, pad: 'same' }, // several im2col chunks per image
];

/** Builds a training step of a tiny CNN with every kernel a ResNet or MobileNet block runs. */
function tinyCnn(seed: number) {
  // Variables made in a tidy: the tensors they are made from are freed.
  const vars = tf.tidy(() => ({
    w1: tf.variable(tensor([3, 3, 3, 8], seed, 0.3)),
    g1: tf.variable(tf.ones([8])),
    b1: tf.variable(tf.zeros([8])),
    w2: tf.variable(tensor([3, 3, 8, 12], seed + 1, 0.2)),
    wd: tf.variable(tensor([3, 3, 12, 1], seed + 2, 0.3)),
    w3: tf.variable(tensor([1, 1, 12, 16], seed + 3, 0.3)),
    bias3: tf.variable(tf.zeros([16])),
    dense: tf.variable(tensor([16, 5], seed + 4, 0.3)),
  }));
  const x = tensor([4, 16, 16, 3], seed + 5);
  const labels = tf.tidy(() => tf.oneHot(tf.tensor1d([0, 1, 2, 4], 'int32'), 5));
  const batchNorm = (h: tf.Tensor4D, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(h, [0, 1, 2]);
    return tf.batchNorm(h, mean, variance, b, g, 1e-5);
  };
  const loss = () =>
    tf.tidy(() => {
      let h: tf.Tensor4D = tf.conv2d(x as tf.Tensor4D, vars.w1 as tf.Tensor4D, 2, 'same');
      h = tf.relu(batchNorm(h, vars.g1, vars.b1) as tf.Tensor4D);
      h = tf.maxPool(h, 3, 1, 'same');
      h = tf.relu6(tf.conv2d(h, vars.w2 as tf.Tensor4D, 1, 'same'));
      h = tf.depthwiseConv2d(h, vars.wd as tf.Tensor4D, 2, 'same');
      h = tf.fused.conv2d({ x: h, filter: vars.w3 as tf.Tensor4D, strides: 1, pad: 'valid', bias: vars.bias3, activation: 'relu' });
      h = tf.avgPool(h, 2, 2, 'valid');
      const pooled = tf.mean(h, [1, 2]);
      return tf.losses.softmaxCrossEntropy(labels, tf.matMul(pooled, vars.dense)) as tf.Scalar;
    });
  const list = Object.values(vars);
  const optimizer = tf.train.sgd(0.1);
  return {
    grads: () => {
      const { value, grads } = tf.variableGrads(loss, list);
      return [value, ...list.map((v) => grads[v.name]!)];
    },
    step: () => {
      const l = optimizer.minimize(loss, true, list)!;
      const v = l.dataSync()[0]!;
      l.dispose();
      return v;
    },
    dispose: () => {
      optimizer.dispose();
      tf.dispose([...list, x, labels]);
    },
  };
}

/** Losses of three SGD steps and the first step's gradients of the tiny CNN on `backend`. */
async function trainCnn(backend: string): Promise<{ grads: Float32Array[]; losses: number[] }> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const cnn = tinyCnn(11);
  const out = cnn.grads();
  const grads = out.map((t) => t.dataSync().slice() as Float32Array);
  tf.dispose(out);
  const losses = [cnn.step(), cnn.step(), cnn.step()];
  cnn.dispose();
  expect(tf.memory().numTensors, `tensors left behind on ${backend}`).to.equal(before);
  return { grads, losses };
}

describe('native convolution, pooling and batch-norm kernels', function () {
  this.timeout(300_000);
  onNative();

  for (const c of CONVS) {
    it(`conv2d ${c.x} k${c.k}→${c.out} stride ${c.stride} pad ${JSON.stringify(c.pad)}: output, input and filter gradients`, async () => {
      const seed = c.x[1] * 100 + c.k * 10 + c.out;
      const x = tensor(c.x, seed);
      const w = tensor([c.k, c.k, c.x[3], c.out], seed + 1, 0.5);
      try {
        const { ref, got } = await onBoth('native', () => {
          const f = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad);
          const y = f(x, w);
          const dy = tf.tensor(random(y.size, seed + 2), y.shape);
          return [y, ...tf.grads((a, b) => tf.sum(tf.mul(f(a, b), dy)))([x, w])];
        });
        // The cpu kernel sums the filter gradient in double, OpenBLAS in float32 (over N·OH·OW rows).
        // An entry of y or dx sums k·k·channels products (up to 288 here), in a different order on
        // each backend: one that cancels to a small fraction of the largest keeps the rounding of
        // the products' size, about 1e-7 of it (on an AVX2 machine, 0.0056301 against 0.0056309
        // with the largest entry near 7.9), so their entries under 1 % of the largest are measured
        // against that; the filter gradient keeps the default floor.
        ['y', 'dx', 'dfilter'].forEach((n, i) => expectClose(got[i]!, ref[i]!, n, i === 2 ? 1e-3 : 1e-4, i === 2 ? 1e-3 : 1e-2));
      } finally {
        tf.dispose([x, w]);
      }
    });
  }

  it('conv2d with dilation 2 (forward) and the fused conv2d with bias and ReLU', async () => {
    const x = tensor([2, 9, 9, 3], 5);
    const w = tensor([3, 3, 3, 4], 6, 0.5);
    const bias = tensor([4], 7);
    try {
      const { ref, got } = await onBoth('native', () => [
        tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same', 'NHWC', 2),
        tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 2, pad: 'same', bias, activation: 'relu' }),
      ]);
      expectClose(got[0]!, ref[0]!, 'dilated', 1e-5);
      expectClose(got[1]!, ref[1]!, 'fused', 1e-5);
    } finally {
      tf.dispose([x, w, bias]);
    }
  });

  for (const [shape, k, mult, stride, pad] of [
    [[2, 8, 8, 4], 3, 1, 1, 'same'],
    [[2, 9, 9, 6], 3, 1, 2, 'same'],
    [[1, 7, 7, 3], 5, 2, 1, 'valid'],
    [[2, 10, 10, 16], 3, 1, 2, 'valid'],
  ] as [[number, number, number, number], number, number, number, 'same' | 'valid'][]) {
    it(`depthwise conv2d ${shape} k${k} ×${mult} stride ${stride} ${pad}: output, input and filter gradients`, async () => {
      const seed = shape[1] * 10 + k + mult;
      const x = tensor(shape, seed);
      const w = tensor([k, k, shape[3], mult], seed + 1, 0.5);
      try {
        const { ref, got } = await onBoth('native', () => {
          const f = (a: tf.Tensor, b: tf.Tensor) => tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad);
          const y = f(x, w);
          const dy = tf.tensor(random(y.size, seed + 2), y.shape);
          return [y, ...tf.grads((a, b) => tf.sum(tf.mul(f(a, b), dy)))([x, w])];
        });
        ['y', 'dx', 'dfilter'].forEach((n, i) => expectClose(got[i]!, ref[i]!, n, 1e-4));
      } finally {
        tf.dispose([x, w]);
      }
    });
  }

  for (const [shape, k, stride, pad] of [
    [[2, 8, 8, 3], 3, 2, 'same'],
    [[2, 8, 8, 5], 2, 2, 'valid'],
    [[1, 7, 9, 4], 3, 1, 'same'],
  ] as [[number, number, number, number], number, number, 'same' | 'valid'][]) {
    it(`max pooling ${shape} k${k} stride ${stride} ${pad}, ties included: output and gradient`, async () => {
      // Values on a coarse grid, so windows hold equal maxima and the gradient's routing matters.
      const x = tf.tidy(() => tf.round(tf.mul(tensor(shape, shape[1] + k), 3)));
      try {
        const { ref, got } = await onBoth('native', () => {
          const y = tf.maxPool(x as tf.Tensor4D, k, stride, pad);
          const dy = tf.tensor(random(y.size, 9), y.shape);
          return [y, tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, k, stride, pad), dy)))(x)];
        });
        expectClose(got[0]!, ref[0]!, 'y', 0);
        expectClose(got[1]!, ref[1]!, 'dx', 1e-6);
      } finally {
        x.dispose();
      }
    });
  }

  it('average pooling: output as cpu; gradient as cpu without padding and as the forward’s own gradient with it', async () => {
    const x = tensor([2, 7, 7, 3], 21);
    try {
      const { ref, got } = await onBoth('native', () => {
        const valid = tf.avgPool(x as tf.Tensor4D, 2, 2, 'valid');
        const dyValid = tf.tensor(random(valid.size, 22), valid.shape);
        const same = tf.avgPool(x as tf.Tensor4D, 3, 2, 'same');
        return [valid, tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.avgPool(a as tf.Tensor4D, 2, 2, 'valid'), dyValid)))(x), same];
      });
      got.forEach((g, i) => expectClose(g, ref[i]!, ['valid', 'd valid', 'same'][i]!, 1e-5));

      // With 'same' padding: every output is the mean of its window's pixels inside the image, so
      // its gradient gives each of them dy / (their count).
      await tf.setBackend('native');
      const [n, h, w, ch] = x.shape as [number, number, number, number];
      const dy = random(2 * 4 * 4 * 3, 23);
      const dx = tf.tidy(() =>
        tf
          .grad((a: tf.Tensor) => tf.sum(tf.mul(tf.avgPool(a as tf.Tensor4D, 3, 2, 'same'), tf.tensor(dy, [2, 4, 4, 3]))))(x)
          .dataSync()
          .slice(),
      );
      const want = new Float32Array(n * h * w * ch);
      for (let b = 0; b < n; b++) {
        for (let oh = 0; oh < 4; oh++) {
          for (let ow = 0; ow < 4; ow++) {
            // 'same' with k 3, stride 2 on 7 pixels pads one before and one after.
            const rows = [oh * 2 - 1, oh * 2, oh * 2 + 1].filter((r) => r >= 0 && r < h);
            const cols = [ow * 2 - 1, ow * 2, ow * 2 + 1].filter((c) => c >= 0 && c < w);
            for (let c = 0; c < ch; c++) {
              const g = dy[((b * 4 + oh) * 4 + ow) * ch + c]! / (rows.length * cols.length);
              for (const r of rows) for (const q of cols) want[((b * h + r) * w + q) * ch + c] += g;
            }
          }
        }
      }
      expectClose(dx, want, 'd same', 1e-5);
    } finally {
      x.dispose();
    }
  });

  it('batch normalisation: output and gradients', async () => {
    const x = tensor([3, 5, 5, 6], 31, 2);
    const gamma = tensor([6], 32);
    const beta = tensor([6], 33);
    try {
      const { ref, got } = await onBoth('native', () => {
        const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const { mean, variance } = tf.moments(a, [0, 1, 2]);
          return tf.batchNorm(a, mean, variance, b, g, 1e-3);
        };
        const y = f(x, gamma, beta);
        const dy = tf.tensor(random(y.size, 34), y.shape);
        return [
          y,
          ...tf.grads((a, g, b) => tf.sum(tf.mul(f(a, g, b), dy)))([x, gamma, beta]),
          tf.batchNorm(x, tf.scalar(0.5), tf.scalar(2), undefined, undefined, 1e-3),
        ];
      });
      ['y', 'dx', 'dgamma', 'dbeta', 'scalar statistics'].forEach((n, i) => expectClose(got[i]!, ref[i]!, n, 1e-4));
    } finally {
      tf.dispose([x, gamma, beta]);
    }
  });

  it('a tiny CNN (conv, batch norm, ReLU, pooling, depthwise, fused 1×1) trains as on cpu, all in C++', async () => {
    const cpu = await trainCnn('cpu');
    resetNativeFallbackCounts();
    const native = await trainCnn('native');
    const fell = [...nativeFallbackCounts()].filter(([, n]) => n > 0);
    expect(fell, 'kernels that fell back to JS').to.deep.equal([]);
    native.grads.forEach((g, i) => expectClose(g, cpu.grads[i]!, i === 0 ? 'loss' : `gradient ${i}`, 1e-3));
    native.losses.forEach((l, i) => expect(l, `loss of step ${i + 1}`).to.be.closeTo(cpu.losses[i]!, 1e-4 * Math.abs(cpu.losses[i]!)));
    expect(native.losses[2]).to.be.below(native.losses[0]!);
  });
});

describe('wasm backend: the CNN kernels it lacks', function () {
  this.timeout(300_000);
  let previous = '';
  before(async function () {
    previous = tf.getBackend();
    const { backendAvailable } = await import('../../src/engine/backend.ts');
    const reason = await backendAvailable('wasm');
    if (reason) {
      console.log(`    skipped: ${reason}`);
      this.skip();
    }
  });
  after(async () => {
    if (previous) await tf.setBackend(previous);
  });

  for (const c of [CONVS[1]!, CONVS[2]!, CONVS[4]!, CONVS[5]!]) {
    it(`Conv2DBackpropFilter ${c.x} k${c.k} stride ${c.stride} ${JSON.stringify(c.pad)} as on cpu`, async () => {
      const x = tensor(c.x, 41);
      const w = tensor([c.k, c.k, c.x[3], c.out], 42, 0.5);
      try {
        const { ref, got } = await onBoth('wasm', () => {
          const y = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, c.pad);
          const dy = tf.tensor(random(y.size, 43), y.shape);
          return tf.grads((a, b) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), dy)))([x, w]);
        });
        expectClose(got[0]!, ref[0]!, 'dx', 1e-4);
        expectClose(got[1]!, ref[1]!, 'dfilter', 1e-4);
      } finally {
        tf.dispose([x, w]);
      }
    });
  }

  it('the gradient of a gather (UnsortedSegmentSum), repeated and unused rows included, as on cpu', async () => {
    const x = tensor([5, 3], 61);
    const idx = tf.tensor1d([4, 0, 4, 2, 4, 1], 'int32');
    try {
      const { ref, got } = await onBoth('wasm', () => {
        const dy = tf.tensor(random(6 * 3, 62), [6, 3]);
        return tf.grads((a) => tf.sum(tf.mul(tf.gather(a, idx), dy)))([x]);
      });
      expectClose(got[0]!, ref[0]!, 'dx', 1e-6);
      // Row 3 is gathered by nobody: its gradient is 0; row 4 three times: the sum of three rows of dy.
      expect(Array.from(got[0]!.subarray(9, 12))).to.deep.equal([0, 0, 0]);
    } finally {
      tf.dispose([x, idx]);
    }
  });

  it('depthwise gradients as on cpu', async () => {
    const x = tensor([2, 9, 9, 4], 51);
    const w = tensor([3, 3, 4, 2], 52, 0.5);
    try {
      const { ref, got } = await onBoth('wasm', () => {
        const f = (a: tf.Tensor, b: tf.Tensor) => tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same');
        const dy = tf.tensor(random(2 * 5 * 5 * 8, 53), [2, 5, 5, 8]);
        return tf.grads((a, b) => tf.sum(tf.mul(f(a, b), dy)))([x, w]);
      });
      expectClose(got[0]!, ref[0]!, 'dx', 1e-4);
      expectClose(got[1]!, ref[1]!, 'dfilter', 1e-4);
    } finally {
      tf.dispose([x, w]);
    }
  });

  it('a tiny CNN trains as on cpu', async () => {
    const cpu = await trainCnn('cpu');
    const wasm = await trainCnn('wasm');
    wasm.grads.forEach((g, i) => expectClose(g, cpu.grads[i]!, i === 0 ? 'loss' : `gradient ${i}`, 1e-3));
    wasm.losses.forEach((l, i) => expect(l, `loss of step ${i + 1}`).to.be.closeTo(cpu.losses[i]!, 1e-4 * Math.abs(cpu.losses[i]!)));
  });
});
