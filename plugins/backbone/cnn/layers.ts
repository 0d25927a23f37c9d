import * as tf from '@tensorflow/tfjs';
import { hasOwnKernel } from '../../../src/engine/backend.ts';
import { normal, ones, Stream, streamKey, uniform, zeros } from '../vit/init.ts';
import { matMul } from '../vit/layers.ts';

/**
 * Convolutional layers on raw variables, NHWC activations and HWIO filters ([kh, kw, in, out];
 * depthwise [kh, kw, channels, 1]). Initial values follow torchvision: convolutions Kaiming-normal
 * with fan-out (std √(2 / (k²·out))), BatchNorm weight 1 / bias 0, classifiers as each model
 * sets them (PyTorch's default U(±1/√fan_in) unless stated).
 */

/** Where layers put their weights: a ParamSet, or a counter that only records shapes. */
export interface ParamSink {
  add(name: string, shape: number[], values: () => Float32Array, options?: { buffer?: boolean }): tf.Variable;
}

export interface Conv2d {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  readonly kernel: number;
  readonly stride: number;
  /** Zeros added on every side (PyTorch's symmetric `padding`, not tfjs's 'same'). */
  readonly pad: number;
  readonly depthwise: boolean;
}

export interface BatchNorm {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  /** Buffers: not trained, but carried by checkpoints and the EMA copy. */
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;
  readonly eps: number;
  /** PyTorch's convention: running ← (1 − momentum)·running + momentum·batch. */
  readonly momentum: number;
}

export interface Dense {
  readonly weight: tf.Variable; // [in, out]
  readonly bias: tf.Variable | null;
}

export function addConv(
  params: ParamSink,
  name: string,
  inC: number,
  outC: number,
  kernel: number,
  seed: number,
  opts: { stride?: number; pad?: number; bias?: boolean; depthwise?: boolean } = {},
): Conv2d {
  const depthwise = opts.depthwise ?? false;
  if (depthwise && inC !== outC) throw new Error(`${name}: a depthwise convolution keeps the channel count (${inC} ≠ ${outC})`);
  const shape = depthwise ? [kernel, kernel, inC, 1] : [kernel, kernel, inC, outC];
  // Kaiming normal, mode fan_out, gain √2 (torchvision's ResNet, VGG and MobileNetV3); a depthwise
  // filter's fan-out is k²·(out / groups) = k².
  const fanOut = kernel * kernel * (depthwise ? 1 : outC);
  const size = shape.reduce((a, b) => a * b, 1);
  const weight = params.add(`${name}.weight`, shape, () => normal(new Stream(streamKey(seed, `${name}.weight`)), size, Math.sqrt(2 / fanOut)));
  const bias = opts.bias ? params.add(`${name}.bias`, [outC], () => zeros(outC)) : null;
  return { weight, bias, kernel, stride: opts.stride ?? 1, pad: opts.pad ?? (kernel - 1) / 2, depthwise };
}

/** `weight`: the scale's initial value (0 for torchvision's zero_init_residual). */
export function addBatchNorm(params: ParamSink, name: string, channels: number, eps = 1e-5, momentum = 0.1, weight = 1): BatchNorm {
  return {
    weight: params.add(`${name}.weight`, [channels], () => (weight === 1 ? ones(channels) : new Float32Array(channels).fill(weight))),
    bias: params.add(`${name}.bias`, [channels], () => zeros(channels)),
    runningMean: params.add(`${name}.running_mean`, [channels], () => zeros(channels), { buffer: true }),
    runningVar: params.add(`${name}.running_var`, [channels], () => ones(channels), { buffer: true }),
    eps,
    momentum,
  };
}

/**
 * A fully connected layer; `init` 'torch' is nn.Linear's default (weight and bias U(±1/√in)),
 * 'normal' N(0, std) with zero bias (torchvision's VGG and MobileNetV3 classifiers), 'zeros'
 * all zero (a linear model, whose loss is convex).
 */
export function addDense(
  params: ParamSink,
  name: string,
  inDim: number,
  outDim: number,
  seed: number,
  init: { kind: 'torch' } | { kind: 'normal'; std: number } | { kind: 'zeros' } = { kind: 'torch' },
): Dense {
  const bound = 1 / Math.sqrt(inDim);
  const weightValues = () => {
    const w = new Stream(streamKey(seed, `${name}.weight`));
    return init.kind === 'torch' ? uniform(w, inDim * outDim, bound) : init.kind === 'normal' ? normal(w, inDim * outDim, init.std) : zeros(inDim * outDim);
  };
  const biasValues = () => (init.kind === 'torch' ? uniform(new Stream(streamKey(seed, `${name}.bias`)), outDim, bound) : zeros(outDim));
  return { weight: params.add(`${name}.weight`, [inDim, outDim], weightValues), bias: params.add(`${name}.bias`, [outDim], biasValues) };
}

export function dense(x: tf.Tensor2D, d: Dense): tf.Tensor2D {
  const y = matMul(x, d.weight);
  return d.bias ? (tf.add(y, d.bias) as tf.Tensor2D) : y;
}

/**
 * How convolutions and max pooling run. 'kernel' calls tfjs's Conv2D / DepthwiseConv2dNative /
 * MaxPool and their gradient kernels; 'matmul' writes them as shifted windows, matrix products
 * (im2col) and reductions, which run on the kernels every backend has and use the BLAS product
 * where there is one. 'auto' takes a layer's kernels where the backend has its forward and
 * gradient kernels of its own, else the matrix products: on native (until it has convolution
 * kernels, tfjs's JS ones would run: about 1 GFLOP/s, minutes per step for a small CNN's filter
 * gradient and max-pool gradient) and on wasm (no Conv2DBackpropFilter nor depthwise gradients).
 */
export type ConvImplementation = 'auto' | 'kernel' | 'matmul';

let implementation: ConvImplementation = 'auto';

/** Chooses how convolutions run (to compare both paths); returns the previous setting. */
export function useConvImplementation(choice: ConvImplementation): ConvImplementation {
  const previous = implementation;
  implementation = choice;
  return previous;
}

const KERNELS = {
  conv: ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter'],
  depthwise: ['DepthwiseConv2dNative', 'DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter'],
  pool: ['MaxPool', 'MaxPoolGrad'],
} as const;

export type LayerOp = keyof typeof KERNELS;

/** The path a layer takes on the active backend. */
export function convPath(op: LayerOp = 'conv'): 'kernel' | 'matmul' {
  if (implementation !== 'auto') return implementation;
  return KERNELS[op].every((k) => hasOwnKernel(k)) ? 'kernel' : 'matmul';
}

/** Output side of a convolution or pooling window (PyTorch's formula, symmetric padding). */
export function outSize(size: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - kernel) / stride) + 1;
}

/**
 * The k² windows of a convolution as [B, Ho, Wo, C] tensors, window (i, j) holding
 * x_padded[:, i + s·y, j + s·x, :]. A stride above 1 is a reshape of the padded image into
 * [B, H/s, s, W/s, s, C] and one slice, so no strided-slice kernel is needed.
 */
function windows(x: tf.Tensor4D, kernel: number, stride: number, pad: number, padValue = 0): tf.Tensor4D[] {
  const [b, h, w, c] = x.shape;
  const ho = outSize(h, kernel, stride, pad);
  const wo = outSize(w, kernel, stride, pad);
  // Rows the windows reach, rounded up to whole strides.
  const needH = stride * (Math.floor((kernel - 1) / stride) + ho);
  const needW = stride * (Math.floor((kernel - 1) / stride) + wo);
  const extraH = Math.max(0, needH - (h + 2 * pad));
  const extraW = Math.max(0, needW - (w + 2 * pad));
  let xp: tf.Tensor4D =
    pad > 0 || extraH > 0 || extraW > 0
      ? tf.pad(
          x,
          [
            [0, 0],
            [pad, pad + extraH],
            [pad, pad + extraW],
            [0, 0],
          ],
          padValue,
        )
      : x;
  if (xp.shape[1] > needH || xp.shape[2] > needW) xp = tf.slice(xp, [0, 0, 0, 0], [b, needH, needW, c]);
  const out: tf.Tensor4D[] = [];
  if (stride === 1) {
    for (let i = 0; i < kernel; i++) for (let j = 0; j < kernel; j++) out.push(tf.slice(xp, [0, i, j, 0], [b, ho, wo, c]));
    return out;
  }
  const grid = tf.reshape(xp, [b, needH / stride, stride, needW / stride, stride, c]);
  for (let i = 0; i < kernel; i++) {
    for (let j = 0; j < kernel; j++) {
      const piece = tf.slice(grid, [0, Math.floor(i / stride), i % stride, Math.floor(j / stride), j % stride, 0], [b, ho, 1, wo, 1, c]);
      out.push(tf.reshape(piece, [b, ho, wo, c]) as tf.Tensor4D);
    }
  }
  return out;
}

/**
 * Depthwise: each channel is its own one-channel image, so the windows of the channel-major planes
 * [C·B, H, W, 1] side by side are [C, B·Ho·Wo, k²], and a product batched over channels with the
 * taps [C, k², 1] sums them. (A batched product also lets a FLOP count see the layer's weights.)
 */
function depthwiseByMatmul(x: tf.Tensor4D, c: Conv2d): tf.Tensor4D {
  const [b, h, w, ch] = x.shape;
  const kk = c.kernel * c.kernel;
  const planes = tf.reshape(tf.transpose(x, [3, 0, 1, 2]), [ch * b, h, w, 1]) as tf.Tensor4D;
  const wins = windows(planes, c.kernel, c.stride, c.pad);
  const [, ho, wo] = wins[0]!.shape;
  const cols = tf.reshape(wins.length === 1 ? wins[0]! : tf.concat(wins, 3), [ch, b * ho * wo, kk]);
  const taps = tf.reshape(tf.transpose(tf.reshape(c.weight, [kk, ch])), [ch, kk, 1]);
  return tf.transpose(tf.reshape(matMul(cols, taps), [ch, b, ho, wo]), [1, 2, 3, 0]) as tf.Tensor4D;
}

function convByMatmul(x: tf.Tensor4D, c: Conv2d): tf.Tensor4D {
  if (c.depthwise) return depthwiseByMatmul(x, c);
  const [b, , , inC] = x.shape;
  const wins = c.kernel === 1 && c.pad === 0 && c.stride === 1 ? [x] : windows(x, c.kernel, c.stride, c.pad);
  const [, ho, wo] = wins[0]!.shape;
  const outC = c.weight.shape[3]!;
  // im2col: the windows side by side along channels, in the filter's (i, j, c) order.
  const cols = wins.length === 1 ? wins[0]! : tf.concat(wins, 3);
  const y = matMul(tf.reshape(cols, [b * ho * wo, c.kernel * c.kernel * inC]) as tf.Tensor2D, tf.reshape(c.weight, [c.kernel * c.kernel * inC, outC]));
  return tf.reshape(y, [b, ho, wo, outC]) as tf.Tensor4D;
}

export function conv2d(x: tf.Tensor4D, c: Conv2d): tf.Tensor4D {
  let y: tf.Tensor4D;
  if (convPath(c.depthwise ? 'depthwise' : 'conv') === 'matmul') y = convByMatmul(x, c);
  else if (c.depthwise) y = tf.depthwiseConv2d(x, c.weight as tf.Tensor4D, c.stride, c.pad);
  else y = tf.conv2d(x, c.weight as tf.Tensor4D, c.stride, c.pad);
  return c.bias ? (tf.add(y, c.bias) as tf.Tensor4D) : y;
}

type CustomArgs = (tf.Tensor | tf.GradSaveFunc)[];

/**
 * Training-mode normalisation of rows [N, C] with the batch's mean and biased variance, as
 * PyTorch normalises. The gradient is written out (x̂ and 1/σ are all it keeps):
 *   dx = (1/σ)·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·γ;  dγ = Σ dy·x̂;  dβ = Σ dy.
 * The batch mean and variance come in as inputs because the caller also needs them for the
 * running statistics; dx above already is the whole derivative, through them included, so theirs
 * is zero.
 */
const normaliseRows = (eps: number) =>
  tf.customGrad((...args: CustomArgs) => {
    const [x, mean, variance, weight, bias, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const rstd = tf.rsqrt(tf.add(variance, eps));
    const normed = tf.mul(tf.sub(x, mean), rstd);
    save([normed, rstd, weight]);
    return {
      value: tf.add(tf.mul(normed, weight), bias),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, r, w] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const g = tf.mul(dy, w);
        const dx = tf.mul(r, tf.sub(tf.sub(g, tf.mean(g, 0)), tf.mul(xh, tf.mean(tf.mul(g, xh), 0))));
        return [dx, tf.zerosLike(r), tf.zerosLike(r), tf.sum(tf.mul(dy, xh), 0), tf.sum(dy, 0)];
      },
    };
  });

const normaliseByEps = new Map<number, ReturnType<typeof normaliseRows>>();

/**
 * BatchNorm over every axis but the last. Training: the batch's statistics, and the running ones
 * move towards them (the variance unbiased, n/(n − 1), as PyTorch keeps it). Evaluation: the
 * running statistics, as a per-channel scale and shift.
 */
export function batchNorm<T extends tf.Tensor>(x: T, bn: BatchNorm, training: boolean): T {
  const channels = x.shape[x.rank - 1]!;
  if (!training) {
    const scale = tf.mul(bn.weight, tf.rsqrt(tf.add(bn.runningVar, bn.eps)));
    return tf.add(tf.mul(x, scale), tf.sub(bn.bias, tf.mul(bn.runningMean, scale))) as T;
  }
  const rows = tf.reshape(x, [-1, channels]) as tf.Tensor2D;
  const n = rows.shape[0];
  if (n < 2) throw new Error(`batchNorm: training needs more than one value per channel, got input [${x.shape.join(', ')}]`);
  const { mean, variance } = tf.moments(rows, 0);
  const m = bn.momentum;
  // Assigned inside the caller's tidy: the variables keep their new values, the temporaries go.
  bn.runningMean.assign(tf.add(tf.mul(bn.runningMean, 1 - m), tf.mul(mean, m)));
  bn.runningVar.assign(tf.add(tf.mul(bn.runningVar, 1 - m), tf.mul(variance, (m * n) / (n - 1))));
  let op = normaliseByEps.get(bn.eps);
  if (!op) normaliseByEps.set(bn.eps, (op = normaliseRows(bn.eps)));
  return tf.reshape(op(rows, mean, variance, bn.weight, bn.bias), x.shape) as T;
}

/**
 * Max pooling; padding never wins (PyTorch pads with −∞). On the 'matmul' path it is written with
 * reductions and elementwise maxima, whose gradients run in native kernels: tfjs's JS MaxPoolGrad
 * alone took most of a small CNN's training step on the native backend.
 */
export function maxPool(x: tf.Tensor4D, kernel: number, stride: number, pad = 0): tf.Tensor4D {
  if (convPath('pool') === 'kernel') return tf.maxPool(x, kernel, stride, pad === 0 ? 'valid' : pad);
  const [b, h, w, c] = x.shape;
  const ho = outSize(h, kernel, stride, pad);
  const wo = outSize(w, kernel, stride, pad);
  if (kernel === stride && pad === 0) {
    // Non-overlapping windows: one reshape and a max over the two window axes.
    const cropped = ho * kernel === h && wo * kernel === w ? x : tf.slice(x, [0, 0, 0, 0], [b, ho * kernel, wo * kernel, c]);
    return tf.max(tf.reshape(cropped, [b, ho, kernel, wo, kernel, c]), [2, 4]) as tf.Tensor4D;
  }
  const wins = windows(x, kernel, stride, pad, -Infinity);
  return wins.slice(1).reduce((m, win) => tf.maximum(m, win), wins[0]!);
}

export function globalAvgPool(x: tf.Tensor4D): tf.Tensor2D {
  return tf.mean(x, [1, 2]) as tf.Tensor2D;
}

/** x·relu6(x + 3)/6 (Howard et al. 2019). */
export function hardSwish<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, hardSigmoid(x)) as T;
}

/** relu6(x + 3)/6. */
export function hardSigmoid<T extends tf.Tensor>(x: T): T {
  return tf.div(tf.relu6(tf.add(x, 3)), 6) as T;
}

/**
 * A fixed [outH·outW, H·W] averaging matrix of PyTorch's AdaptiveAvgPool2d: output cell (i, j)
 * averages rows ⌊i·H/outH⌋ … ⌈(i + 1)·H/outH⌉ − 1 and the same for columns.
 */
export function adaptivePoolMatrix(h: number, w: number, outH: number, outW: number): Float32Array {
  const m = new Float32Array(outH * outW * h * w);
  for (let i = 0; i < outH; i++) {
    const r0 = Math.floor((i * h) / outH);
    const r1 = Math.ceil(((i + 1) * h) / outH);
    for (let j = 0; j < outW; j++) {
      const c0 = Math.floor((j * w) / outW);
      const c1 = Math.ceil(((j + 1) * w) / outW);
      const share = 1 / ((r1 - r0) * (c1 - c0));
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) m[(i * outW + j) * h * w + r * w + c] = share;
    }
  }
  return m;
}
