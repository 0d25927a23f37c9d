import * as tf from '@tensorflow/tfjs';
import type { DataType } from '@tensorflow/tfjs';
import { expect } from 'chai';

import { nativeFallbackCounts, resetNativeFallbackCounts } from '../../src/native/index.ts';
import { mulberry32 } from '../../src/core/rng.ts';
import { onNative } from './helpers.ts';

// Every native kernel against the JS cpu kernel it replaces, on the same inputs.

interface Input {
  readonly values: ArrayLike<number>;
  readonly shape: number[];
  readonly dtype?: DataType;
}

interface Result {
  readonly shape: number[];
  readonly dtype: DataType;
  readonly values: ArrayLike<number>;
}

let seed = 1;
function randn(shape: number[], opts: { scale?: number; ints?: number; positive?: boolean } = {}): Input {
  const rand = mulberry32(seed++);
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (opts.ints) v[i] = Math.floor(rand() * opts.ints) - Math.floor(opts.ints / 2);
    else v[i] = (opts.positive ? rand() + 0.05 : rand() * 2 - 1) * (opts.scale ?? 3);
  }
  return { values: v, shape, dtype: 'float32' };
}

function ints(shape: number[], lo: number, hi: number): Input {
  const rand = mulberry32(seed++);
  const n = shape.reduce((a, b) => a * b, 1);
  return { values: Int32Array.from({ length: n }, () => lo + Math.floor(rand() * (hi - lo))), shape, dtype: 'int32' };
}

function bools(shape: number[]): Input {
  const rand = mulberry32(seed++);
  const n = shape.reduce((a, b) => a * b, 1);
  return { values: Uint8Array.from({ length: n }, () => (rand() < 0.5 ? 1 : 0)), shape, dtype: 'bool' };
}

type Op = (...t: tf.Tensor[]) => tf.Tensor | tf.Tensor[];

async function runOn(backend: string, op: Op, inputs: Input[]): Promise<Result[]> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const ts = inputs.map((i) => tf.tensor(i.values as Float32Array, i.shape, i.dtype ?? 'float32'));
  const outs = tf.tidy(() => {
    const r = op(...ts);
    return Array.isArray(r) ? r : [r];
  });
  const res = outs.map((o) => ({ shape: o.shape, dtype: o.dtype, values: o.dataSync().slice() }));
  tf.dispose([...outs, ...ts]);
  expect(tf.memory().numTensors, `tensors leaked on ${backend}`).to.equal(before);
  return res;
}

function close(a: number, b: number, rtol: number, atol: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  if (!Number.isFinite(a) || !Number.isFinite(b)) return a === b;
  return Math.abs(a - b) <= atol + rtol * Math.abs(b);
}

function expectSame(got: Result[], want: Result[], rtol: number, atol: number, label: string, exact = false): void {
  expect(got.length, `${label}: outputs`).to.equal(want.length);
  for (let k = 0; k < want.length; k++) {
    const g = got[k]!;
    const w = want[k]!;
    expect(g.shape, `${label}: shape`).to.deep.equal(w.shape);
    expect(g.dtype, `${label}: dtype`).to.equal(w.dtype);
    expect(g.values.length, `${label}: size`).to.equal(w.values.length);
    for (let i = 0; i < w.values.length; i++) {
      if (exact ? !Object.is(g.values[i], w.values[i]) : !close(g.values[i]!, w.values[i]!, rtol, atol)) {
        expect.fail(`${label}: element ${i} is ${g.values[i]}, the cpu kernel gives ${w.values[i]}`);
      }
    }
  }
}

/** Runs `op` on both backends and checks that `kernels` ran natively (no JS fallback). */
/** `exact`: every element the same value, zeros of the same sign (Object.is), instead of a tolerance. */
async function check(label: string, op: Op, inputs: Input[], kernels: string[], tol: { rtol?: number; atol?: number; exact?: boolean } = {}) {
  const want = await runOn('cpu', op, inputs);
  resetNativeFallbackCounts();
  const got = await runOn('native', op, inputs);
  for (const k of kernels) expect(nativeFallbackCounts().get(k) ?? 0, `${label}: ${k} fell back to JS`).to.equal(0);
  expectSame(got, want, tol.rtol ?? 1e-6, tol.atol ?? 1e-6, label, tol.exact);
}

describe('native backend kernels', function () {
  onNative();

  const shapePairs: Array<[number[], number[]]> = [
    [
      [3, 4],
      [3, 4],
    ],
    [[3, 4], [4]],
    [
      [3, 1],
      [1, 4],
    ],
    [
      [2, 3, 4],
      [3, 1],
    ],
    [[], [5]],
    [[5], []],
    [[0, 3], [3]],
    [[1], [1]],
    [
      [7, 1, 5],
      [1, 6, 1],
    ],
    [
      [2, 1, 3, 1],
      [4, 1, 5],
    ],
    [
      [33, 65],
      [33, 1],
    ],
    [[300, 300], [300]],
    // Many short rows, split over the pool mid-way through the outer axes: per-channel NHWC
    // constants, and a middle-axis column that keeps three axes apart.
    [[32, 32, 32, 3], [3]],
    [[5], [700, 5]],
    [
      [64, 40, 30],
      [40, 1],
    ],
  ];

  describe('binary ops with broadcasting', () => {
    const floatOps: Record<string, [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor]> = {
      add: ['Add', tf.add],
      sub: ['Sub', tf.sub],
      mul: ['Multiply', tf.mul],
      div: ['RealDiv', tf.div],
      maximum: ['Maximum', tf.maximum],
      minimum: ['Minimum', tf.minimum],
      squaredDifference: ['SquaredDifference', tf.squaredDifference],
      greater: ['Greater', tf.greater],
      greaterEqual: ['GreaterEqual', tf.greaterEqual],
      less: ['Less', tf.less],
      lessEqual: ['LessEqual', tf.lessEqual],
      equal: ['Equal', tf.equal],
      notEqual: ['NotEqual', tf.notEqual],
    };
    for (const [name, [kernel, fn]] of Object.entries(floatOps)) {
      it(`${name} float32`, async () => {
        for (const [sa, sb] of shapePairs) {
          // Small integers make equal elements (for the comparisons) common.
          await check(`${name} ${sa}|${sb}`, fn, [randn(sa, { ints: 5 }), randn(sb, { ints: 5 })], [kernel]);
          await check(`${name} ${sa}|${sb}`, fn, [randn(sa), randn(sb)], [kernel]);
        }
      });
    }
    for (const [name, [kernel, fn]] of Object.entries(floatOps)) {
      if (name === 'div') continue;
      it(`${name} int32`, async () => {
        for (const [sa, sb] of shapePairs) {
          await check(`${name} int32 ${sa}|${sb}`, fn, [ints(sa, -4, 5), ints(sb, -4, 5)], [kernel]);
        }
      });
    }
    it('pow float32', async () => {
      for (const [sa, sb] of shapePairs) {
        await check(`pow ${sa}|${sb}`, tf.pow, [randn(sa, { positive: true }), randn(sb)], ['Pow'], { rtol: 1e-5 });
        await check(`pow ${sa}|${sb}`, tf.pow, [randn(sa), randn(sb, { ints: 4 })], ['Pow'], { rtol: 1e-5 });
      }
    });
    it('propagates NaN and infinities like the cpu kernels', async () => {
      const a: Input = { values: new Float32Array([NaN, 1, Infinity, -Infinity, 0, -0, NaN, 3]), shape: [8] };
      const b: Input = { values: new Float32Array([1, NaN, Infinity, 2, 0, 0, NaN, -Infinity]), shape: [8] };
      for (const [name, [kernel, fn]] of Object.entries(floatOps)) await check(`${name} specials`, fn, [a, b], [kernel]);
    });
  });

  describe('unary ops', () => {
    const specials = [NaN, Infinity, -Infinity, 0, -0, 1e-30, -1e-30, 1e-7, 88, 89, -87, -104, 1000, -1000, 0.5, -0.5, 0.625, 20, -20];
    const mixed = (n: number): Input => {
      const r = randn([n], { scale: 6 });
      return { values: Float32Array.from([...specials, ...Array.from(r.values)]), shape: [specials.length + n] };
    };
    const ops: Record<string, [string, (x: tf.Tensor) => tf.Tensor, number?]> = {
      exp: ['Exp', tf.exp, 2e-6],
      log: ['Log', tf.log, 2e-6],
      sqrt: ['Sqrt', tf.sqrt],
      rsqrt: ['Rsqrt', tf.rsqrt],
      tanh: ['Tanh', tf.tanh, 4e-6],
      relu: ['Relu', tf.relu],
      relu6: ['Relu6', tf.relu6],
      sigmoid: ['Sigmoid', tf.sigmoid, 2e-6],
      erf: ['Erf', tf.erf, 2e-6],
      step: ['Step', (x) => tf.step(x, 0.25)],
      neg: ['Neg', tf.neg],
      abs: ['Abs', tf.abs],
      square: ['Square', tf.square],
      reciprocal: ['Reciprocal', tf.reciprocal],
      elu: ['Elu', tf.elu, 2e-6],
      leakyRelu: ['LeakyRelu', (x) => tf.leakyRelu(x, 0.1)],
      softplus: ['Softplus', tf.softplus, 2e-6],
      log1p: ['Log1p', tf.log1p],
      expm1: ['Expm1', tf.expm1],
      floor: ['Floor', tf.floor],
      ceil: ['Ceil', tf.ceil],
      sign: ['Sign', tf.sign],
      sin: ['Sin', tf.sin],
      cos: ['Cos', tf.cos],
    };
    for (const [name, [kernel, fn, rtol]] of Object.entries(ops)) {
      it(name, async () => {
        for (const n of [0, 1, 7, 1000, 70001]) {
          await check(`${name} n=${n}`, fn, [mixed(n)], [kernel], { rtol: rtol ?? 1e-6, atol: 1e-6 });
        }
        await check(`${name} 3-d`, fn, [randn([2, 3, 5])], [kernel], { rtol: rtol ?? 1e-6, atol: 1e-6 });
      });
    }
    // RandAugment's: to the bit, the sign of a zero included.
    const halves = [0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3.5, 1e8 + 0.5, 8388607.5, -8388607.5, 0.49999997, -0.49999997, 4.500001];
    const exactOps: Record<string, (x: tf.Tensor) => tf.Tensor> = {
      round: tf.round,
      'clipByValue(−0.1, 0.3)': (x) => tf.clipByValue(x, -0.1, 0.3),
      'clipByValue(−2, 2)': (x) => tf.clipByValue(x, -2, 2),
    };
    for (const [name, fn] of Object.entries(exactOps)) {
      it(`${name}, bit for bit`, async () => {
        const kernel = name === 'round' ? 'Round' : 'ClipByValue';
        for (const n of [0, 1, 7, 1000, 70001]) {
          const m = mixed(n);
          await check(
            `${name} n=${n}`,
            fn,
            [{ values: Float32Array.from([...halves, ...Array.from(m.values)]), shape: [halves.length + m.values.length] }],
            [kernel],
            { exact: true },
          );
        }
        await check(`${name} 3-d`, fn, [randn([2, 3, 5], { scale: 3 })], [kernel], { exact: true });
      });
    }
  });

  describe('reductions', () => {
    const cases: Array<[number[], number | number[] | null]> = [
      [[2, 3, 4, 5], null],
      [[2, 3, 4, 5], 0],
      [[2, 3, 4, 5], -1],
      [
        [2, 3, 4, 5],
        [0, 2],
      ],
      [
        [2, 3, 4, 5],
        [1, 3],
      ],
      [
        [2, 3, 4, 5],
        [1, 2],
      ],
      [
        [2, 3, 4, 5],
        [0, 1, 2, 3],
      ],
      [[7, 1, 9], 1],
      [
        [7, 1, 9],
        [0, 2],
      ],
      [[1, 1, 1], null],
      [[513, 3], 0],
      [[3, 700], 1],
      [[4, 300, 2], 1],
      [[100003], 0],
      [[2048, 192], -1],
      [[2048, 192], 0],
    ];
    const fops: Record<string, [string, (x: tf.Tensor, axis: number | number[] | null, keep: boolean) => tf.Tensor]> = {
      sum: ['Sum', (x, a, k) => tf.sum(x, a ?? undefined, k)],
      mean: ['Mean', (x, a, k) => tf.mean(x, a ?? undefined, k)],
      max: ['Max', (x, a, k) => tf.max(x, a ?? undefined, k)],
      min: ['Min', (x, a, k) => tf.min(x, a ?? undefined, k)],
      prod: ['Prod', (x, a, k) => tf.prod(x, a ?? undefined, k)],
    };
    for (const [name, [kernel, fn]] of Object.entries(fops)) {
      it(`${name} float32 over any axes`, async () => {
        for (const [shape, axis] of cases) {
          for (const keep of [false, true]) {
            const x = name === 'prod' ? randn(shape, { positive: true, scale: 1.5 }) : randn(shape);
            await check(`${name} ${shape} axis=${axis} keep=${keep}`, (t) => fn(t, axis, keep), [x], [kernel], { rtol: 2e-5, atol: 1e-5 });
          }
        }
      });
      if (name !== 'mean') {
        it(`${name} int32`, async () => {
          for (const [shape, axis] of cases.slice(0, 12)) {
            await check(`${name} int32 ${shape} axis=${axis}`, (t) => fn(t, axis, false), [ints(shape, -3, 4)], [kernel]);
          }
        });
      }
    }
    it('mean of int32', async () => {
      await check('mean int32', (t) => tf.mean(t, 1), [ints([5, 6], -10, 10)], ['Mean']);
    });
    it('sum of bool', async () => {
      await check('sum bool', (t) => tf.sum(t, 0), [bools([9, 4])], ['Sum']);
      await check('sum bool all', (t) => tf.sum(t), [bools([3, 5, 2])], ['Sum']);
    });
    it('max and min propagate NaN', async () => {
      const x: Input = { values: new Float32Array([1, NaN, 3, 4, 5, 6, NaN, 2, 9]), shape: [3, 3] };
      for (const axis of [0, 1, null]) {
        await check(`max nan ${axis}`, (t) => tf.max(t, axis ?? undefined), [x], ['Max']);
        await check(`min nan ${axis}`, (t) => tf.min(t, axis ?? undefined), [x], ['Min']);
      }
    });
    it('argMax and argMin pick the first extreme along any axis', async () => {
      for (const [shape, axis] of [
        [[4, 5, 6], 0],
        [[4, 5, 6], 1],
        [[4, 5, 6], 2],
        [[1, 7], 1],
        [[600, 3], 0],
        [[9], 0],
      ] as Array<[number[], number]>) {
        const x = randn(shape, { ints: 3 }); // many ties
        await check(`argMax ${shape} ${axis}`, (t) => tf.argMax(t, axis), [x], ['ArgMax']);
        await check(`argMin ${shape} ${axis}`, (t) => tf.argMin(t, axis), [x], ['ArgMin']);
        await check(`argMax int32 ${shape} ${axis}`, (t) => tf.argMax(t, axis), [ints(shape, 0, 3)], ['ArgMax']);
      }
    });
  });

  describe('softmax', () => {
    it('over the last axis, stable for large logits', async () => {
      for (const shape of [
        [4, 7],
        [2, 3, 5],
        [1, 1],
        [3, 1000],
        [96, 64, 64],
      ]) {
        await check(`softmax ${shape}`, (t) => tf.softmax(t), [randn(shape, { scale: 50 })], ['Softmax'], { rtol: 1e-5, atol: 1e-7 });
      }
      const inf: Input = { values: new Float32Array([-Infinity, 0, 1, -Infinity, -Infinity, 5]), shape: [2, 3] };
      await check('softmax -inf', (t) => tf.softmax(t), [inf], ['Softmax'], { rtol: 1e-6, atol: 1e-7 });
    });
    it('logSoftmax (composed from kernels)', async () => {
      await check('logSoftmax', (t) => tf.logSoftmax(t), [randn([5, 9], { scale: 20 })], [], { rtol: 1e-5, atol: 1e-5 });
    });
  });

  describe('matmul', () => {
    const mm = (ta: boolean, tb: boolean) => (a: tf.Tensor, b: tf.Tensor) => tf.matMul(a, b, ta, tb);
    it('2-d and batched, with every transpose combination', async () => {
      const dims: Array<[number, number, number, number[]]> = [
        [1, 1, 1, []],
        [17, 33, 9, []],
        [64, 64, 64, []],
        [3, 5, 4, [2]],
        [16, 16, 16, [8]],
        [128, 128, 128, [2]],
        [5, 7, 3, [2, 3]],
      ];
      for (const [m, n, k, batch] of dims) {
        for (const ta of [false, true]) {
          for (const tb of [false, true]) {
            const a = randn([...batch, ...(ta ? [k, m] : [m, k])]);
            const b = randn([...batch, ...(tb ? [n, k] : [k, n])]);
            // The JS kernel sums in double, BLAS in float: the difference grows with k.
            await check(`matmul ${m}x${n}x${k} batch=${batch} ta=${ta} tb=${tb}`, mm(ta, tb), [a, b], ['BatchMatMul'], { rtol: 1e-5, atol: 2e-6 * k });
          }
        }
      }
    });
    it('broadcasts a 2-d operand over the batch', async () => {
      await check('3d x 2d', mm(false, false), [randn([4, 6, 5]), randn([5, 3])], ['BatchMatMul'], { rtol: 1e-5, atol: 1e-5 });
      await check('3d x 2d tb', mm(false, true), [randn([4, 6, 5]), randn([3, 5])], ['BatchMatMul'], { rtol: 1e-5, atol: 1e-5 });
      await check('3d x 2d ta', mm(true, false), [randn([4, 5, 6]), randn([5, 3])], ['BatchMatMul'], { rtol: 1e-5, atol: 1e-5 });
      await check('2d x 3d', mm(false, false), [randn([6, 5]), randn([4, 5, 3])], ['BatchMatMul'], { rtol: 1e-5, atol: 1e-5 });
    });
    it('broadcasts batch axes of size 1 on both sides', async () => {
      // The cpu kernel indexes batches modulo their count, which is only right when one side has a
      // single batch, so the reference here multiplies explicitly tiled operands.
      const a = randn([2, 1, 3, 4]);
      const b = randn([1, 5, 4, 6]);
      const want = await runOn('cpu', (x, y) => tf.matMul(tf.tile(x, [1, 5, 1, 1]), tf.tile(y, [2, 1, 1, 1])), [a, b]);
      resetNativeFallbackCounts();
      const got = await runOn('native', (x, y) => tf.matMul(x, y), [a, b]);
      expect(nativeFallbackCounts().get('BatchMatMul') ?? 0).to.equal(0);
      expectSame(got, want, 1e-5, 1e-5, 'matmul [2,1] x [1,5] batches');
    });
    it('handles empty operands', async () => {
      await check('k=0', mm(false, false), [randn([3, 0]), randn([0, 4])], ['BatchMatMul']);
      await check('m=0', mm(false, false), [randn([0, 3]), randn([3, 4])], ['BatchMatMul']);
      await check('batch=0', mm(false, false), [randn([0, 2, 3]), randn([0, 3, 4])], ['BatchMatMul']);
    });
    it('fused matmul with bias and activations', async () => {
      const acts = ['linear', 'relu', 'relu6', 'elu', 'leakyrelu', 'sigmoid'] as const;
      for (const activation of acts) {
        for (const biasShape of [[5], [1, 5], [4, 1], []]) {
          for (const [ta, tb] of [
            [false, false],
            [true, true],
          ] as const) {
            const a = randn(ta ? [3, 4] : [4, 3]);
            const b = randn(tb ? [5, 3] : [3, 5]);
            const bias = randn(biasShape);
            await check(
              `fused ${activation} bias=${biasShape} ta=${ta} tb=${tb}`,
              (x, y, z) =>
                tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, bias: z, activation, transposeA: ta, transposeB: tb, leakyreluAlpha: 0.3 }),
              [a, b, bias],
              ['_FusedMatMul'],
              { rtol: 1e-5, atol: 1e-5 },
            );
          }
        }
      }
      await check(
        'fused no bias',
        (x, y) => tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, activation: 'relu' }),
        [randn([2, 6, 3]), randn([3, 4])],
        ['_FusedMatMul'],
        { rtol: 1e-5, atol: 1e-5 },
      );
    });
  });

  describe('data movement', () => {
    const perms3 = [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ];
    it('transpose with any permutation and dtype', async () => {
      for (const perm of perms3) {
        await check(`transpose [2,3,4] ${perm}`, (t) => tf.transpose(t, perm), [randn([2, 3, 4])], ['Transpose']);
        await check(`transpose [33,1,70] ${perm}`, (t) => tf.transpose(t, perm), [randn([33, 1, 70])], ['Transpose']);
        await check(`transpose int32 ${perm}`, (t) => tf.transpose(t, perm), [ints([5, 7, 3], -9, 9)], ['Transpose']);
        await check(`transpose bool ${perm}`, (t) => tf.transpose(t, perm), [bools([5, 7, 3])], ['Transpose']);
      }
      for (const perm of [
        [0, 2, 1, 3],
        [3, 1, 2, 0],
        [1, 3, 0, 2],
        [2, 0, 3, 1],
      ]) {
        await check(`transpose 4-d ${perm}`, (t) => tf.transpose(t, perm), [randn([3, 4, 5, 6])], ['Transpose']);
        await check(`transpose 4-d size-1 ${perm}`, (t) => tf.transpose(t, perm), [randn([1, 4, 1, 6])], ['Transpose']);
      }
      await check('transpose 2-d odd', (t) => tf.transpose(t), [randn([65, 97])], ['Transpose']);
      await check('transpose 5-d', (t) => tf.transpose(t, [2, 0, 3, 1, 4]), [randn([4, 8, 3, 3, 5])], ['Transpose']);
      await check('transpose empty', (t) => tf.transpose(t, [1, 0, 2]), [randn([2, 0, 3])], ['Transpose']);
    });
    it('slice (strided)', async () => {
      await check('slice 3-d', (t) => tf.slice(t, [1, 2, 0], [2, 2, 6]), [randn([4, 5, 6])], ['Slice']);
      await check('slice inner', (t) => tf.slice(t, [0, 0, 1], [4, 5, 3]), [randn([4, 5, 6])], ['Slice']);
      // Thousands of short rows over three outer axes, split over the pool mid-way.
      await check('slice 4-d', (t) => tf.slice(t, [1, 2, 3, 1], [14, 17, 19, 5]), [randn([16, 20, 24, 8])], ['Slice']);
      await check('slice int32', (t) => tf.slice(t, [1, 1], [3, 2]), [ints([5, 4], 0, 9)], ['Slice']);
      await check('slice bool', (t) => tf.slice(t, [0, 1], [2, 2]), [bools([3, 4])], ['Slice']);
      await check('slice -1 size', (t) => tf.slice(t, [0, 1], [-1, -1]), [randn([3, 4])], ['Slice']);
      await check('slice contiguous (JS view)', (t) => tf.slice(t, [1, 0], [2, 4]), [randn([3, 4])], []);
    });
    it('split, unstack and stack', async () => {
      await check('split axis 1', (t) => tf.split(t, [1, 2, 3], 1), [randn([4, 6])], ['SplitV']);
      await check('split 3 axis 2', (t) => tf.split(t, 3, 2), [randn([2, 3, 9])], ['SplitV']);
      await check('split axis 0', (t) => tf.split(t, 2, 0), [randn([4, 3])], []);
      await check('unstack axis 1', (t) => tf.unstack(t, 1), [randn([3, 4, 2])], ['Unpack']);
      await check('unstack int32 axis 2', (t) => tf.unstack(t, 2), [ints([3, 4, 2], 0, 9)], ['Unpack']);
      for (const axis of [0, 1, 2]) {
        await check(`stack axis ${axis}`, (a, b, c) => tf.stack([a!, b!, c!], axis), [randn([3, 4]), randn([3, 4]), randn([3, 4])], ['Pack']);
      }
    });
    it('concat along any axis', async () => {
      for (const axis of [0, 1, 2, -1]) {
        const shapes = [
          [2, 3, 4],
          [2, 3, 4],
          [2, 3, 4],
        ].map((s) => {
          const t = s.slice();
          t[(axis + 3) % 3] = [1, 2, 5][Math.abs(axis) % 3]!;
          return t;
        });
        const inputs = shapes.map((s, i) => (i === 1 ? randn(s) : randn(s)));
        await check(`concat axis ${axis}`, (...t) => tf.concat(t, axis), inputs, ['Concat']);
      }
      await check('concat int32', (a, b) => tf.concat([a!, b!], 1), [ints([3, 2], 0, 5), ints([3, 4], 0, 5)], ['Concat']);
      await check('concat bool', (a, b) => tf.concat([a!, b!], 0), [bools([2, 3]), bools([1, 3])], ['Concat']);
      await check('concat with empty', (a, b, c) => tf.concat([a!, b!, c!], 1), [randn([3, 2]), randn([3, 0]), randn([3, 1])], ['Concat']);
    });
    it('pad', async () => {
      await check(
        'pad 0',
        (t) =>
          tf.pad(t, [
            [1, 2],
            [0, 3],
          ]),
        [randn([3, 4])],
        ['PadV2'],
      );
      await check(
        'pad value',
        (t) =>
          tf.pad(
            t,
            [
              [0, 1],
              [2, 0],
              [1, 1],
            ],
            1.5,
          ),
        [randn([2, 3, 2])],
        ['PadV2'],
      );
      await check('pad int32', (t) => tf.pad(t, [[2, 1]], 7), [ints([4], 0, 5)], ['PadV2']);
    });
    it('tile', async () => {
      await check('tile 2-d', (t) => tf.tile(t, [2, 3]), [randn([3, 4])], ['Tile']);
      await check('tile 3-d', (t) => tf.tile(t, [1, 4, 2]), [randn([2, 1, 3])], ['Tile']);
      await check('tile bool', (t) => tf.tile(t, [3]), [bools([5])], ['Tile']);
      await check('tile int32', (t) => tf.tile(t, [2, 1]), [ints([2, 2], 0, 4)], ['Tile']);
    });
    it('gather and its gradient (unsorted segment sum)', async () => {
      const idx = { values: Int32Array.from([2, 0, 2, 1, 3]), shape: [5], dtype: 'int32' as const };
      await check('gather axis 0', (x, i) => tf.gather(x, i), [randn([4, 3]), idx], ['GatherV2']);
      await check('gather axis 1', (x, i) => tf.gather(x, i, 1), [randn([2, 4, 3]), idx], ['GatherV2']);
      await check('gather int32', (x, i) => tf.gather(x, i, 0), [ints([4, 2], 0, 9), idx], ['GatherV2']);
      const bidx = { values: Int32Array.from([0, 1, 1, 2, 0, 0]), shape: [2, 3], dtype: 'int32' as const };
      await check('gather batchDims', (x, i) => tf.gather(x, i, 1, 1), [randn([2, 3, 4]), bidx], ['GatherV2']);
      const ids = { values: Int32Array.from([0, 2, 2, -1, 5, 1]), shape: [6], dtype: 'int32' as const };
      await check('segment sum', (x, i) => tf.unsortedSegmentSum(x, i as tf.Tensor1D, 4), [randn([6, 3]), ids], ['UnsortedSegmentSum']);
      await check('segment sum int32', (x, i) => tf.unsortedSegmentSum(x, i as tf.Tensor1D, 3), [ints([6, 2], 0, 9), ids], []);
      await check('gather grad', (x, i) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, i!), 2)))(x!), [randn([4, 3]), idx], ['UnsortedSegmentSum']);
    });
    it('gather rejects out-of-range indices like the cpu kernel', async () => {
      await tf.setBackend('native');
      const x = tf.ones([3, 2]);
      const i = tf.tensor1d([0, 3], 'int32');
      expect(() => tf.gather(x, i)).to.throw(/index value 3 is not in \[0, 2\]/);
      tf.dispose([x, i]);
    });
    it('denseBincount: counts, weights, binary output, values past the last bin', async () => {
      const bins =
        (n: number, binary = false) =>
        (t: tf.Tensor, w?: tf.Tensor) =>
          tf.denseBincount(t as tf.Tensor2D, (w ?? []) as tf.Tensor2D, n, binary);
      await check('bincount 2-d', bins(256), [ints([6, 300], 0, 260)], ['DenseBincount']);
      await check('bincount 2-d weighted', bins(16), [ints([4, 50], 0, 20), randn([4, 50])], ['DenseBincount']);
      await check('bincount 2-d int32 weights', bins(8), [ints([5, 20], 0, 8), ints([5, 20], -3, 4)], ['DenseBincount']);
      await check('bincount 2-d binary', bins(12, true), [ints([3, 40], 0, 14)], ['DenseBincount']);
      await check('bincount 1-d', bins(25), [ints([100], 0, 30)], ['DenseBincount']);
      await check('bincount 1-d weighted', bins(25), [ints([100], 0, 30), randn([100])], ['DenseBincount']);
      await tf.setBackend('native');
      const negative = tf.tensor2d([[1, -1]], [1, 2], 'int32');
      expect(() => tf.denseBincount(negative, [], 4)).to.throw(/non-negative/);
      negative.dispose();
    });
    it('cropAndResize: bilinear and nearest, boxes past the edges, flipped, one pixel, box indices past the batch', async () => {
      const f32 = (values: number[], shape: number[]): Input => ({ values: Float32Array.from(values), shape, dtype: 'float32' });
      const boxes = f32(
        [
          [0.1, 0.2, 0.9, 0.7], // inside
          [-0.3, 0.5, 0.6, 1.4], // past the top and the right: extrapolated
          [0.8, 0.9, 0.2, 0.1], // flipped both ways
          [0.125, 0.125, 0.125, 0.625], // on the half pixels of a 5 × 5 image: nearest's ties
          [0, 0, 1, 1], // the whole image
          [0.3, 0.3, 0.3, 0.3], // a point
        ].flat(),
        [6, 4],
      );
      const ind = { values: Int32Array.from([0, 2, 1, 0, 3, 2]), shape: [6], dtype: 'int32' as const }; // 3: past the batch of 3
      for (const method of ['bilinear', 'nearest'] as const) {
        for (const crop of [
          [4, 6],
          [1, 1],
          [1, 5],
          [7, 1],
        ] as Array<[number, number]>) {
          await check(
            `cropAndResize ${method} ${crop.join('×')}`,
            (im, bx, bi) => tf.image.cropAndResize(im as tf.Tensor4D, bx as tf.Tensor2D, bi as tf.Tensor1D, crop, method, 0.25),
            [randn([3, 5, 5, 2]), boxes, ind],
            ['CropAndResize'],
            { exact: true },
          );
        }
      }
      await check(
        'cropAndResize of faces',
        (im, bx, bi) => tf.image.cropAndResize(im as tf.Tensor4D, bx as tf.Tensor2D, bi as tf.Tensor1D, [48, 48], 'bilinear'),
        [randn([4, 48, 48, 3]), f32([0.05, 0.1, 0.95, 0.8, 0.2, 0.2, 0.6, 0.9, 0, 0, 1, 1, 0.31, 0.02, 0.77, 0.41], [4, 4]), ints([4], 0, 4)],
        ['CropAndResize'],
        { exact: true },
      );
      // A negative box index reads outside the image in the JS kernel: it runs there, as before.
      await check(
        'cropAndResize negative index',
        (im, bx, bi) => tf.image.cropAndResize(im as tf.Tensor4D, bx as tf.Tensor2D, bi as tf.Tensor1D, [2, 2]),
        [randn([1, 3, 3, 1]), f32([0, 0, 1, 1], [1, 4]), { values: Int32Array.from([-1]), shape: [1], dtype: 'int32' as const }],
        [],
        { exact: true },
      );
    });
    it('oneHot, select, cast, addN', async () => {
      const labels = { values: Int32Array.from([0, 4, -1, 2, 5, 1]), shape: [2, 3], dtype: 'int32' as const };
      await check('oneHot', (t) => tf.oneHot(t as tf.Tensor1D, 5), [labels], ['OneHot']);
      await check('oneHot float', (t) => tf.oneHot(t as tf.Tensor1D, 5, 2, -1, 'float32'), [labels], ['OneHot']);
      await check('where same shape', (c, a, b) => tf.where(c!, a!, b!), [bools([4, 5]), randn([4, 5]), randn([4, 5])], ['Select']);
      await check('where int32', (c, a, b) => tf.where(c!, a!, b!), [bools([6]), ints([6], 0, 9), ints([6], 0, 9)], ['Select']);
      const edge: Input = { values: new Float32Array([-1.7, 1.7, 0, -0, NaN, 3e9, -3e9, 2147483647, 0.4]), shape: [9] };
      await check('cast float->int32', (t) => tf.cast(t, 'int32'), [edge], ['Cast']);
      await check('cast float->bool', (t) => tf.cast(t, 'bool'), [edge], ['Cast']);
      await check('cast int32->bool', (t) => tf.cast(t, 'bool'), [ints([7], -2, 3)], ['Cast']);
      await check('cast int32->float (relabel)', (t) => tf.add(tf.cast(t, 'float32'), 0.5), [ints([7], -2, 3)], ['Add']);
      await check('addN', (a, b, c) => tf.addN([a!, b!, c!]), [randn([3, 4]), randn([3, 4]), randn([3, 4])], ['AddN']);
      await check('addN int32', (a, b) => tf.addN([a!, b!]), [ints([5], 0, 9), ints([5], 0, 9)], ['AddN']);
    });
  });
});
