import * as tf from '@tensorflow/tfjs';
import type { ParamSet } from './params.ts';
import { ones, Stream, streamKey, xavierUniform, zeros } from './init.ts';
import { fusedLinear, fusedVitBlock } from '../../../src/engine/fused.ts';
import { GELU_GRAD_KERNEL, GELU_KERNEL, LAYER_NORM_GRAD_KERNEL, LAYER_NORM_KERNEL } from '../../../src/core/kernel-names.ts';

/**
 * Functional layers on raw variables, written only with standard kernels (MatMul, Add, Mul, Sub,
 * Mean, Rsqrt, Erf/Tanh, Softmax, Reshape, Transpose, Split/Unpack, Slice) so every backend, including
 * ones that implement only a subset, runs them forward and backward. Activations between layers
 * stay 2-D [tokens, width] so each linear is one plain matrix product.
 */

export type GeluKind = 'erf' | 'tanh';

export interface Linear {
  readonly weight: tf.Variable; // [in, out] (transposed with respect to PyTorch's [out, in])
  readonly bias: tf.Variable | null;
}

export interface Norm {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  readonly eps: number;
}

export function addLinear(
  params: ParamSet,
  name: string,
  inDim: number,
  outDim: number,
  seed: number,
  opts: { bias?: boolean; weightInit?: (stream: Stream, size: number) => Float32Array } = {},
): Linear {
  const stream = new Stream(streamKey(seed, `${name}.weight`));
  const w = opts.weightInit ? opts.weightInit(stream, inDim * outDim) : xavierUniform(stream, inDim, outDim);
  const weight = params.add(`${name}.weight`, [inDim, outDim], w);
  const bias = opts.bias === false ? null : params.add(`${name}.bias`, [outDim], zeros(outDim));
  return { weight, bias };
}

export function addNorm(params: ParamSet, name: string, dim: number, eps: number): Norm {
  return { weight: params.add(`${name}.weight`, [dim], ones(dim)), bias: params.add(`${name}.bias`, [dim], zeros(dim)), eps };
}

/**
 * Matrix products laid out for the backend. wasm's BatchMatMul runs a naive loop whenever an
 * operand is flagged as transposed (about 10× slower than its XNNPACK path), and tfjs's own matMul
 * gradient always uses those flags, so there the transposes are materialised. The JS cpu kernel
 * walks the shared axis with a stride unless it is the last axis of both operands, so plain a·b is
 * about 2× faster as a·(bᵀ)ᵀ. Other backends take the flags, which BLAS handles for free.
 */
function product(a: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean): tf.Tensor {
  const backend = tf.getBackend();
  if (backend === 'wasm' && (transposeA || transposeB)) {
    return tf.matMul(transposeA ? swapLast(a) : a, transposeB ? swapLast(b) : b);
  }
  if (backend === 'cpu' && !transposeA && !transposeB) return tf.matMul(a, swapLast(b), false, true);
  return tf.matMul(a, b, transposeA, transposeB);
}

function swapLast(t: tf.Tensor): tf.Tensor {
  const r = t.rank;
  return tf.transpose(
    t,
    [...Array(r).keys()].map((i) => (i < r - 2 ? i : 2 * r - 3 - i)),
  );
}

type CustomArgs = (tf.Tensor | tf.GradSaveFunc)[];

const matMulNN = tf.customGrad((...args: CustomArgs) => {
  const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: product(a, b, false, false),
    gradFunc: (dy: tf.Tensor, [sa, sb]: tf.Tensor[]) => [product(dy, sb!, false, true), product(sa!, dy, true, false)],
  };
});

const matMulNT = tf.customGrad((...args: CustomArgs) => {
  const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: product(a, b, false, true),
    gradFunc: (dy: tf.Tensor, [sa, sb]: tf.Tensor[]) => [product(dy, sb!, false, false), product(dy, sa!, true, false)],
  };
});

/** a·b (or a·bᵀ) over the last two axes, with a gradient that is fast on every backend. */
export function matMul<T extends tf.Tensor>(a: T, b: tf.Tensor, transposeB = false): T {
  return (transposeB ? matMulNT(a, b) : matMulNN(a, b)) as T;
}

export function linear(x: tf.Tensor2D, l: Linear): tf.Tensor2D {
  const fused = fusedEnabled && l.bias ? fusedLinear(x, l.weight, l.bias) : null; // one kernel where the backend has it
  if (fused) return fused;
  const y = matMul(x, l.weight);
  return l.bias ? (tf.add(y, l.bias) as tf.Tensor2D) : y;
}

/**
 * LayerNorm over the last axis from mean and (biased) variance, as PyTorch computes it. The
 * gradient is written out (x̂ and 1/σ are all it keeps) instead of taped through nine ops:
 *   dx = (1/σ)·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·γ;  dγ = Σ dy·x̂;  dβ = Σ dy.
 */
const layerNormOp = (eps: number) =>
  tf.customGrad((...args: CustomArgs) => {
    const [x, weight, bias, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const mean = tf.mean(x, -1, true);
    const centred = tf.sub(x, mean);
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), eps));
    const normed = tf.mul(centred, rstd);
    save([normed, rstd, weight]);
    return {
      value: tf.add(tf.mul(normed, weight), bias),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, r, w] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const g = tf.mul(dy, w);
        const dx = tf.mul(r, tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xh, tf.mean(tf.mul(g, xh), -1, true))));
        return [dx, tf.sum(tf.mul(dy, xh), 0), tf.sum(dy, 0)];
      },
    };
  });

/**
 * The 'native' backend registers fused kernels for LayerNorm and exact GELU (forward and
 * backward, one pass each) with the same arithmetic as the ops here; elsewhere the ops run.
 */
const FUSED_BACKEND = 'native';

let fusedEnabled = true;
let fusedRegistered: boolean | undefined;

/** Turns the fused kernels off or on (to compare both paths); returns the previous setting. */
export function useFusedLayers(enabled: boolean): boolean {
  const previous = fusedEnabled;
  fusedEnabled = enabled;
  return previous;
}

function fused(): boolean {
  if (!fusedEnabled || tf.getBackend() !== FUSED_BACKEND) return false;
  if (!fusedRegistered) {
    try {
      fusedRegistered = [LAYER_NORM_KERNEL, LAYER_NORM_GRAD_KERNEL, GELU_KERNEL, GELU_GRAD_KERNEL].every((k) => tf.getKernel(k, FUSED_BACKEND) !== undefined);
    } catch {
      fusedRegistered = false;
    }
  }
  return fusedRegistered;
}

const fusedLayerNormOp = (eps: number) =>
  tf.customGrad((...args: CustomArgs) => {
    const [x, weight, bias, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const [y, mean, rstd] = tf.engine().runKernel(LAYER_NORM_KERNEL, { x, gamma: weight, beta: bias }, { eps }) as tf.Tensor[];
    save([x, mean!, rstd!, weight]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, m, r, w] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        return tf.engine().runKernel(LAYER_NORM_GRAD_KERNEL, { dy, x: sx, mean: m, rstd: r, gamma: w }, {}) as tf.Tensor[];
      },
    };
  });

const layerNormByEps = new Map<number, ReturnType<typeof layerNormOp>>();
const fusedLayerNormByEps = new Map<number, ReturnType<typeof fusedLayerNormOp>>();

export function layerNorm(x: tf.Tensor2D, n: Norm): tf.Tensor2D {
  const cache = x.dtype === 'float32' && fused() ? fusedLayerNormByEps : layerNormByEps;
  let op = cache.get(n.eps);
  if (!op) cache.set(n.eps, (op = (cache === fusedLayerNormByEps ? fusedLayerNormOp : layerNormOp)(n.eps)));
  return op(x, n.weight, n.bias) as tf.Tensor2D;
}

const SQRT1_2 = Math.SQRT1_2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** Exact GELU x·Φ(x); its derivative Φ(x) + x·φ(x) is written out so only x is kept for backward. */
const geluErf = tf.customGrad((...args: CustomArgs) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  return {
    value: tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, SQRT1_2)), 1)),
    gradFunc: (dy: tf.Tensor, [sx]: tf.Tensor[]) => {
      const cdf = tf.mul(tf.add(tf.erf(tf.mul(sx!, SQRT1_2)), 1), 0.5);
      const pdf = tf.mul(tf.exp(tf.mul(tf.square(sx!), -0.5)), INV_SQRT_2PI);
      return [tf.mul(dy, tf.add(cdf, tf.mul(sx!, pdf)))];
    },
  };
});

const fusedGeluErf = tf.customGrad((...args: CustomArgs) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  return {
    value: tf.engine().runKernel(GELU_KERNEL, { x }, {}) as tf.Tensor,
    gradFunc: (dy: tf.Tensor, [sx]: tf.Tensor[]) => [tf.engine().runKernel(GELU_GRAD_KERNEL, { dy, x: sx! }, {}) as tf.Tensor],
  };
});

export function gelu<T extends tf.Tensor>(x: T, kind: GeluKind): T {
  if (kind === 'erf') return (x.dtype === 'float32' && fused() ? fusedGeluErf(x) : geluErf(x)) as T;
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), SQRT_2_OVER_PI);
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1)) as T;
}

/** Stochastic regularisers draw their seeds from the owner's stream: same seed, same masks. */
export interface Noise {
  readonly training: boolean;
  readonly stream: Stream;
}

export function dropout<T extends tf.Tensor>(x: T, rate: number, noise: Noise): T {
  if (!noise.training || rate <= 0) return x;
  return tf.dropout(x, rate, undefined, noise.stream.nextUint32()) as T;
}

/** Stochastic depth: drops a residual branch for whole samples, scaling the kept ones by 1/keep. */
export function dropPath(branch: tf.Tensor2D, batch: number, rate: number, noise: Noise): tf.Tensor2D {
  if (!noise.training || rate <= 0) return branch;
  const keep = 1 - rate;
  const u = tf.randomUniform([batch, 1, 1], 0, 1, 'float32', noise.stream.nextUint32());
  const mask = tf.div(tf.floor(tf.add(u, keep)), keep);
  const tokens = branch.shape[0] / batch;
  return tf.reshape(tf.mul(tf.reshape(branch, [batch, tokens, branch.shape[1]]), mask), branch.shape);
}

export interface BlockParams {
  readonly norm1: Norm;
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly norm2: Norm;
  readonly fc1: Linear;
  readonly fc2: Linear;
}

export interface BlockSettings {
  readonly dim: number;
  readonly heads: number;
  readonly gelu: GeluKind;
  readonly dropout: number;
  readonly dropPath: number;
}

export function addBlock(params: ParamSet, name: string, dim: number, mlpDim: number, seed: number, eps: number, qkvBias: boolean): BlockParams {
  return {
    norm1: addNorm(params, `${name}.norm1`, dim, eps),
    qkv: addLinear(params, `${name}.attn.qkv`, dim, 3 * dim, seed, { bias: qkvBias }),
    proj: addLinear(params, `${name}.attn.proj`, dim, dim, seed),
    norm2: addNorm(params, `${name}.norm2`, dim, eps),
    fc1: addLinear(params, `${name}.mlp.fc1`, dim, mlpDim, seed),
    fc2: addLinear(params, `${name}.mlp.fc2`, mlpDim, dim, seed),
  };
}

/**
 * Query, key and value heads [B, H, T, hd] from the fused projection [B·T, 3·D]. The JS cpu
 * kernels (also under the native backend) split a row-major matrix along its columns element by
 * element, about 8× slower than one rank-5 transpose and a split along the leading axis; wasm's
 * rank-5 transpose is the slow one there, so it splits the columns.
 */
function headsOf(qkv: tf.Tensor2D, batch: number, tokens: number, heads: number, hd: number): tf.Tensor4D[] {
  if (tf.getBackend() === 'wasm') {
    return tf.split(qkv, 3, 1).map((t) => tf.transpose(tf.reshape(t, [batch, tokens, heads, hd]), [0, 2, 1, 3]) as tf.Tensor4D);
  }
  return tf.unstack(tf.transpose(tf.reshape(qkv, [batch, tokens, 3, heads, hd]), [2, 0, 3, 1, 4])) as tf.Tensor4D[];
}

/** Multi-head self-attention on x [B·T, D] → [B·T, D]. */
export function attention(x: tf.Tensor2D, p: BlockParams, batch: number, heads: number): tf.Tensor2D {
  const [rows, dim] = x.shape;
  const tokens = rows / batch;
  const hd = dim / heads;
  const [q, k, v] = headsOf(linear(x, p.qkv), batch, tokens, heads, hd);
  const scores = matMul(tf.mul(q!, 1 / Math.sqrt(hd)), k!, true); // [B, H, T, T]
  const mixed = matMul(tf.softmax(scores), v!); // [B, H, T, hd]
  const merged = tf.reshape(tf.transpose(mixed, [0, 2, 1, 3]), [rows, dim]) as tf.Tensor2D;
  return linear(merged, p.proj);
}

/** Pre-norm block: x + attn(LN(x)), then x + MLP(LN(x)). */
export function block(x: tf.Tensor2D, p: BlockParams, batch: number, s: BlockSettings, dropPathRate: number, noise: Noise): tf.Tensor2D {
  if (fusedEnabled && (!noise.training || (s.dropout <= 0 && dropPathRate <= 0))) {
    const y = fusedVitBlock(x, p, batch, s.heads, s.gelu); // one kernel where the backend has it
    if (y) return y;
  }
  const a = dropout(attention(layerNorm(x, p.norm1), p, batch, s.heads), s.dropout, noise);
  const h = tf.add(x, dropPath(a, batch, dropPathRate, noise)) as tf.Tensor2D;
  const hidden = dropout(gelu(linear(layerNorm(h, p.norm2), p.fc1), s.gelu), s.dropout, noise);
  const m = dropout(linear(hidden, p.fc2), s.dropout, noise);
  return tf.add(h, dropPath(m, batch, dropPathRate, noise));
}

/** 2-D sin-cos position embedding of MAE: [grid², dim], first half from the column, second from the row. */
export function sincos2d(dim: number, grid: number): Float32Array {
  if (dim % 4 !== 0) throw new Error(`sin-cos position embedding needs a width divisible by 4, got ${dim}`);
  const quarter = dim / 4;
  const out = new Float32Array(grid * grid * dim);
  for (let i = 0; i < grid; i++) {
    for (let j = 0; j < grid; j++) {
      const row = (i * grid + j) * dim;
      for (let k = 0; k < quarter; k++) {
        const omega = 1 / Math.pow(10000, k / quarter);
        out[row + k] = Math.sin(j * omega);
        out[row + quarter + k] = Math.cos(j * omega);
        out[row + 2 * quarter + k] = Math.sin(i * omega);
        out[row + 3 * quarter + k] = Math.cos(i * omega);
      }
    }
  }
  return out;
}
