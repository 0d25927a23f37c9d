import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import {
  adaptivePoolMatrix,
  addBatchNorm,
  addConv,
  batchNorm,
  conv2d,
  convPath,
  maxPool,
  outSize,
  useConvImplementation,
  type ConvImplementation,
} from '../../../plugins/backbone/cnn/layers.ts';
import { ParamSet } from '../../../plugins/backbone/vit/params.ts';
import { backendAvailable } from '../../../src/engine/backend.ts';

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

function sink(params: ParamSet) {
  return { add: (name: string, shape: number[], values: () => Float32Array, o?: { buffer?: boolean }) => params.add(name, shape, values, o) };
}

function withPath<T>(choice: ConvImplementation, f: () => T): T {
  const previous = useConvImplementation(choice);
  try {
    return f();
  } finally {
    useConvImplementation(previous);
  }
}

describe('convolutional layers', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  describe('BatchNorm', () => {
    it('normalises with the batch statistics in training and moves the running ones (hand-computed)', () => {
      const params = new ParamSet('bntest', true);
      const bn = addBatchNorm(sink(params), 'bn', 2, 1e-5, 0.1);
      try {
        // Channel 0 holds 1, 2, 3, 6 (mean 3, biased variance 3.5, unbiased 14/3);
        // channel 1 holds 0, 0, 4, 4 (mean 2, biased variance 4, unbiased 16/3).
        const x = tf.tensor4d([1, 0, 2, 0, 3, 4, 6, 4], [2, 1, 2, 2]);
        bn.weight.assign(tf.tensor1d([2, 1]));
        bn.bias.assign(tf.tensor1d([0.5, -1]));
        const y = batchNorm(x, bn, true).dataSync();
        const s0 = Math.sqrt(3.5 + 1e-5);
        const s1 = Math.sqrt(4 + 1e-5);
        const expected = [2 * (-2 / s0) + 0.5, -2 / s1 - 1, 2 * (-1 / s0) + 0.5, -2 / s1 - 1, 0.5, 2 / s1 - 1, 2 * (3 / s0) + 0.5, 2 / s1 - 1];
        expected.forEach((e, i) => expect(y[i]).to.be.closeTo(e, 1e-5));
        // running ← 0.9·running + 0.1·batch; the variance unbiased, as PyTorch keeps it.
        const rm = bn.runningMean.dataSync();
        const rv = bn.runningVar.dataSync();
        expect(rm[0]).to.be.closeTo(0.3, 1e-6);
        expect(rm[1]).to.be.closeTo(0.2, 1e-6);
        expect(rv[0]).to.be.closeTo(0.9 + 0.1 * (14 / 3), 1e-6);
        expect(rv[1]).to.be.closeTo(0.9 + 0.1 * (16 / 3), 1e-6);
        // Evaluation uses the running statistics and leaves them alone.
        const e = batchNorm(x, bn, false).dataSync();
        expect(e[0]).to.be.closeTo(2 * ((1 - 0.3) / Math.sqrt(rv[0]! + 1e-5)) + 0.5, 1e-5);
        expect(e[5]).to.be.closeTo((4 - 0.2) / Math.sqrt(rv[1]! + 1e-5) - 1, 1e-5);
        expect(bn.runningMean.dataSync()[0]).to.be.closeTo(0.3, 1e-6);
        x.dispose();
      } finally {
        params.dispose();
      }
    });

    it('its written-out gradient equals the gradient taped through the plain formula', () => {
      const params = new ParamSet('bngrad', true);
      const bn = addBatchNorm(sink(params), 'bn', 3);
      try {
        tf.tidy(() => {
          bn.weight.assign(tf.tensor1d([1.5, -0.5, 2]));
          bn.bias.assign(tf.tensor1d([0.1, 0.2, 0.3]));
          const x = tf.randomNormal([4, 3, 2, 3], 0, 2, 'float32', 5) as tf.Tensor4D;
          const w = tf.randomNormal([4, 3, 2, 3], 0, 1, 'float32', 6);
          const ours = tf.grads((xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
            return tf.sum(tf.mul(batchNorm(xx as tf.Tensor4D, { ...bn, weight: g as tf.Variable, bias: b as tf.Variable }, true), w));
          })([x, bn.weight, bn.bias]);
          const plain = tf.grads((xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
            const { mean, variance } = tf.moments(xx, [0, 1, 2]);
            return tf.sum(tf.mul(tf.add(tf.mul(tf.div(tf.sub(xx, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b), w));
          })([x, bn.weight, bn.bias]);
          ours.forEach((g, i) => expect(maxAbsDiff(g, plain[i]!), `input ${i}`).to.be.below(1e-4));
        });
      } finally {
        params.dispose();
      }
    });

    it('refuses a training batch with one value per channel', () => {
      const params = new ParamSet('bnone', true);
      const bn = addBatchNorm(sink(params), 'bn', 2);
      try {
        expect(() => tf.tidy(() => batchNorm(tf.ones([1, 1, 1, 2]), bn, true))).to.throw(/more than one value per channel/);
      } finally {
        params.dispose();
      }
    });
  });

  describe('convolution as matrix products', () => {
    const cases = [
      { k: 3, s: 1, inC: 3, outC: 4, size: 7, depthwise: false },
      { k: 3, s: 2, inC: 2, outC: 5, size: 8, depthwise: false },
      { k: 7, s: 2, inC: 3, outC: 4, size: 11, depthwise: false }, // ResNet's stem: 7×7, stride 2, padding 3
      { k: 1, s: 1, inC: 6, outC: 3, size: 5, depthwise: false },
      { k: 1, s: 2, inC: 4, outC: 8, size: 6, depthwise: false }, // ResNet's downsample
      { k: 3, s: 1, inC: 5, outC: 5, size: 6, depthwise: true },
      { k: 5, s: 2, inC: 4, outC: 4, size: 9, depthwise: true }, // MobileNetV3's 5×5 stride-2 depthwise
    ];
    for (const c of cases) {
      it(`${c.depthwise ? 'depthwise ' : ''}${c.k}×${c.k} stride ${c.s} on ${c.size} px gives tfjs's convolution and its gradients`, () => {
        const params = new ParamSet('convtest', true);
        const conv = addConv(sink(params), 'conv', c.inC, c.outC, c.k, 3, { stride: c.s, depthwise: c.depthwise, bias: true });
        try {
          tf.tidy(() => {
            conv.bias!.assign(tf.randomNormal([c.outC], 0, 1, 'float32', 2));
            const x = tf.randomNormal([2, c.size, c.size, c.inC], 0, 1, 'float32', 4) as tf.Tensor4D;
            const ho = outSize(c.size, c.k, c.s, (c.k - 1) / 2);
            const w = tf.randomNormal([2, ho, ho, c.outC], 0, 1, 'float32', 9);
            const run = (choice: ConvImplementation) =>
              withPath(choice, () => {
                const y = conv2d(x, conv);
                const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
                  tf.sum(tf.mul(conv2d(xx as tf.Tensor4D, { ...conv, weight: ww as tf.Variable, bias: bb as tf.Variable }), w)),
                )([x, conv.weight, conv.bias!]);
                return [y, ...g];
              });
            const kernel = run('kernel');
            const matmul = run('matmul');
            expect(kernel[0]!.shape).to.deep.equal([2, ho, ho, c.outC]);
            kernel.forEach((t, i) => expect(maxAbsDiff(t, matmul[i]!), ['output', 'dx', 'dW', 'db'][i]).to.be.below(1e-4));
          });
        } finally {
          params.dispose();
        }
      });
    }

    it('max pooling by reshape and by windows gives tfjs’s pool and its gradient', () => {
      tf.tidy(() => {
        // Distinct values, so no window has a tie and both gradients pick the same pixel.
        const values = tf.randomUniform([2, 9, 9, 3], 0, 1, 'float32', 8);
        for (const [k, s, p, size] of [
          [2, 2, 0, 8],
          [2, 2, 0, 9],
          [3, 2, 1, 9],
          [3, 2, 1, 8],
        ] as const) {
          const x = tf.slice(values, [0, 0, 0, 0], [2, size, size, 3]) as tf.Tensor4D;
          const run = (choice: ConvImplementation) =>
            withPath(choice, () => {
              const y = maxPool(x, k, s, p);
              const ho = y.shape[1];
              const w = tf.randomNormal([2, ho, ho, 3], 0, 1, 'float32', 3);
              return [y, tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(maxPool(xx as tf.Tensor4D, k, s, p), w)))(x)];
            });
          const kernel = run('kernel');
          const matmul = run('matmul');
          expect(kernel[0]!.shape[1], `${k}/${s}/${p} on ${size}`).to.equal(outSize(size, k, s, p));
          expect(maxAbsDiff(kernel[0]!, matmul[0]!)).to.equal(0);
          expect(maxAbsDiff(kernel[1]!, matmul[1]!)).to.be.below(1e-6);
        }
      });
    });

    it('takes tfjs’s kernels where the backend has them with their gradients, else matrix products', async () => {
      expect(['conv', 'depthwise', 'pool'].map((op) => convPath(op as 'conv'))).to.deep.equal(['kernel', 'kernel', 'kernel']); // cpu
      expect(withPath('matmul', () => convPath())).to.equal('matmul');
      if (await backendAvailable('wasm')) return;
      await tf.setBackend('wasm');
      try {
        // wasm has Conv2D and MaxPoolGrad; the gradients it lacks (Conv2DBackpropFilter, the depthwise ones) are added by src/engine/wasm-kernels.ts.
        expect(['conv', 'depthwise', 'pool'].map((op) => convPath(op as 'conv'))).to.deep.equal(['kernel', 'kernel', 'kernel']);
      } finally {
        await tf.setBackend('cpu');
      }
    });
  });

  it('adaptive average pooling averages PyTorch’s overlapping windows', () => {
    // 5 → 3: rows [0, 2), [1, 4), [3, 5) (⌊i·5/3⌋ … ⌈(i+1)·5/3⌉ − 1)
    const m = adaptivePoolMatrix(5, 1, 3, 1);
    const rows = [0, 1, 2].map((i) => Array.from(m.subarray(i * 5, i * 5 + 5)));
    expect(rows[0]).to.deep.equal([0.5, 0.5, 0, 0, 0]);
    rows[1]!.forEach((v, j) => expect(v).to.be.closeTo(j >= 1 && j <= 3 ? 1 / 3 : 0, 1e-7));
    expect(rows[2]).to.deep.equal([0, 0, 0, 0.5, 0.5]);
    // 1 → 7 (a 32 px VGG input): every cell copies the one value.
    expect(Array.from(adaptivePoolMatrix(1, 1, 7, 7))).to.deep.equal(new Array(49).fill(1));
  });
});
