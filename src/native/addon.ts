import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

type Values = Float32Array | Int32Array | Uint8Array;

/** The compiled addon (src/native/csrc). Every kernel writes into an output array allocated in JS. */
export interface NativeAddon {
  matmul(
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    batch: number,
    m: number,
    n: number,
    k: number,
    transposeA: boolean,
    transposeB: boolean,
    aStep: number,
    bStep: number,
    aIdx: Int32Array | null,
    bIdx: Int32Array | null,
    bias?: Float32Array | null,
    activation?: number,
    alpha?: number,
  ): void;
  /** lo and hi: ClipByValue's bounds (op 25). */
  unary(op: number, x: Float32Array, out: Float32Array, alpha?: number, lo?: number, hi?: number): void;
  binary(op: number, a: Values, b: Values, out: Values, outShape: number[], aStrides: number[], bStrides: number[]): boolean;
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  select(condition: Uint8Array, t: Values, e: Values, out: Values, inner: number): boolean;
  cast(x: Values, out: Values): boolean;
  addN(inputs: Values[], out: Values): boolean;
  oneHot(indices: Int32Array, out: Values, depth: number, onValue: number, offValue: number): boolean;
  reduce(op: number, x: Values, out: Values, shape: number[], mask: number[]): boolean;
  transpose(x: Values, out: Values, shape: number[], perm: number[]): void;
  slice(x: Values, out: Values, shape: number[], begin: number[], size: number[]): void;
  pad(x: Values, out: Values, shape: number[], before: number[], outShape: number[], value: number): boolean;
  concat(inputs: Values[], out: Values, outer: number, inners: number[]): void;
  tile(x: Values, out: Values, shape: number[], reps: number[]): void;
  gather(x: Values, indices: Int32Array, out: Values, batch: number, outer: number, dim: number, slice: number): number;
  segmentSum(x: Values, segmentIds: Int32Array, out: Values, slice: number, numSegments: number): boolean;
  /** shape [batch, h, w, c] of the NHWC image; every output written (zeros for a box index past the batch), or false (nothing written) for a negative box index or a box coordinate that is not finite. */
  cropAndResize(
    image: Float32Array,
    boxes: Float32Array,
    boxInd: Int32Array,
    out: Float32Array,
    shape: number[],
    cropSize: number[],
    bilinear: boolean,
    extrapolationValue: number,
  ): boolean;
  adamW(
    param: Float32Array,
    grad: Float32Array,
    m: Float32Array,
    v: Float32Array,
    outParam: Float32Array,
    outM: Float32Array,
    outV: Float32Array,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    sqrtBc2: number,
    epsilon: number,
    stepSize: number,
    decayFactor: number,
    decay: boolean,
  ): void;
  adamWInPlace(
    params: Float32Array[],
    grads: Float32Array[],
    ms: Float32Array[],
    vs: Float32Array[],
    decayFactors: Float32Array,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    sqrtBc2: number,
    epsilon: number,
    stepSize: number,
  ): void;
  /** t ← t·keep + s·take for each pair (float32, no fused multiply-add), targets overwritten. */
  emaInPlace(targets: Float32Array[], sources: Float32Array[], keep: number, take: number): void;
  layerNorm(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    out: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  layerNormGrad(
    dy: Float32Array,
    x: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    gamma: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
    rows: number,
    cols: number,
  ): void;
  gelu(x: Float32Array, out: Float32Array): void;
  softmaxCrossEntropy(logits: Float32Array, targets: Float32Array, loss: Float32Array, logp: Float32Array, rows: number, cols: number): void;
  softmaxCrossEntropyGrad(
    dloss: Float32Array,
    targets: Float32Array,
    logp: Float32Array,
    dlogits: Float32Array,
    dtargets: Float32Array,
    rows: number,
    cols: number,
  ): void;
  linearGrad(
    dy: Float32Array,
    x: Float32Array,
    w: Float32Array,
    dx: Float32Array,
    dw: Float32Array,
    db: Float32Array,
    rows: number,
    inDim: number,
    outDim: number,
  ): void;
  /** Floats of the saved activations of one ViT block; dims [batch, tokens, dim, heads, mlpDim]. */
  vitBlockWorkspace(dims: number[]): number;
  vitBlock(
    x: Float32Array,
    params: Float32Array[],
    y: Float32Array,
    workspace: Float32Array,
    dims: number[],
    eps1: number,
    eps2: number,
    tanhGelu: boolean,
  ): void;
  vitBlockGrad(dy: Float32Array, workspace: Float32Array, params: Float32Array[], grads: Float32Array[], dims: number[], tanhGelu: boolean): void;
  geluGrad(dy: Float32Array, x: Float32Array, dx: Float32Array): void;
  /** geometry: [N, H, W, C, KH, KW, F, OH, OW, SH, SW, DH, DW, padTop, padLeft], NHWC; F is the channel multiplier for depthwise. */
  conv2d(x: Float32Array, filter: Float32Array, out: Float32Array, geometry: number[]): void;
  conv2dBackpropInput(dy: Float32Array, filter: Float32Array, dx: Float32Array, geometry: number[]): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dfilter: Float32Array, geometry: number[]): void;
  depthwiseConv2d(x: Float32Array, filter: Float32Array, out: Float32Array, geometry: number[]): void;
  depthwiseConv2dBackpropInput(dy: Float32Array, filter: Float32Array, dx: Float32Array, geometry: number[]): void;
  depthwiseConv2dBackpropFilter(x: Float32Array, dy: Float32Array, dfilter: Float32Array, geometry: number[]): void;
  maxPool(x: Float32Array, out: Float32Array, geometry: number[]): void;
  maxPoolGrad(dy: Float32Array, x: Float32Array, dx: Float32Array, geometry: number[]): void;
  avgPool(x: Float32Array, out: Float32Array, geometry: number[]): void;
  avgPoolGrad(dy: Float32Array, dx: Float32Array, geometry: number[]): void;
  batchNorm(x: Float32Array, mean: Float32Array, variance: Float32Array, offset: Float32Array, scale: Float32Array, out: Float32Array, eps: number): void;
  setThreads(n: number): number;
  getThreads(): number;
  info(): { config: string; core: string; blasThreads: number; threads: number; simd: 'avx512' | 'avx2' | 'baseline' };
}

const here = path.dirname(fileURLToPath(import.meta.url));
export const ADDON_PATH = path.join(here, 'build', 'Release', 'ssfer_native.node');
const NOT_BUILT = 'native addon not built (run npm run build:native; needs g++ and libopenblas-dev)';

let cached: NativeAddon | string | undefined;

/**
 * OpenBLAS 0.3.21 (Debian 12) does not know recent Xeons and falls back to its generic
 * Prescott kernels, 4-5x slower than the AVX-512 ones. The choice is made once when the library
 * loads, so pick the kernel family from the CPU flags beforehand unless the user chose one.
 */
function chooseOpenBlasCore(): void {
  if (process.env.OPENBLAS_CORETYPE !== undefined || process.platform !== 'linux' || process.arch !== 'x64') return;
  let flags: string[];
  try {
    flags =
      readFileSync('/proc/cpuinfo', 'utf8')
        .match(/^flags\s*:(.*)$/m)?.[1]
        .trim()
        .split(/\s+/) ?? [];
  } catch {
    return;
  }
  const hasAll = (...f: string[]) => f.every((x) => flags.includes(x));
  if (hasAll('avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl')) {
    process.env.OPENBLAS_CORETYPE = 'SkylakeX';
  } else if (hasAll('avx2', 'fma')) {
    process.env.OPENBLAS_CORETYPE = 'Haswell';
  }
}

/** Loads the addon once; returns it, or why it cannot be used. */
export function loadAddon(): NativeAddon | string {
  if (cached !== undefined) return cached;
  if (!existsSync(ADDON_PATH)) {
    cached = NOT_BUILT;
    return cached;
  }
  chooseOpenBlasCore();
  try {
    const require = createRequire(import.meta.url);
    cached = require(ADDON_PATH) as NativeAddon;
  } catch (err) {
    cached = `native addon failed to load: ${(err as Error).message.split('\n')[0]}`;
  }
  return cached;
}
