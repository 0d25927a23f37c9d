import * as tf from '@tensorflow/tfjs';
import type { DataType, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';

import {
  ADAMW_KERNEL,
  ADAMW_IN_PLACE_KERNEL,
  EMA_IN_PLACE_KERNEL,
  LAYER_NORM_KERNEL,
  LAYER_NORM_GRAD_KERNEL,
  GELU_KERNEL,
  GELU_GRAD_KERNEL,
  LINEAR_KERNEL,
  LINEAR_GRAD_KERNEL,
  CROSS_ENTROPY_KERNEL,
  CROSS_ENTROPY_GRAD_KERNEL,
  VIT_BLOCK_KERNEL,
  VIT_BLOCK_GRAD_KERNEL,
} from '../core/kernel-names.ts';
import type { NativeAddon } from './addon.ts';
import type { BufferPool } from './pool.ts';

type Values = Float32Array | Int32Array | Uint8Array;

/** The parts of the tfjs cpu backend (MathBackendCPU) that the kernels use. */
export interface CpuBackendLike {
  data: { get(dataId: object): { values?: unknown; dtype: DataType; complexTensorInfos?: unknown } };
  makeTensorInfo(shape: number[], dtype: DataType, values?: Values): TensorInfo;
}

type KernelArgs = Parameters<KernelFunc>[0];

// Op codes of the addon (csrc/elementwise.cc, csrc/reduce.cc).
export const UNARY_OPS: Record<string, number> = {
  Exp: 0,
  Log: 1,
  Sqrt: 2,
  Rsqrt: 3,
  Tanh: 4,
  Relu: 5,
  Relu6: 6,
  Sigmoid: 7,
  Erf: 8,
  Step: 9,
  Neg: 10,
  Abs: 11,
  Square: 12,
  Reciprocal: 13,
  Elu: 14,
  LeakyRelu: 15,
  Softplus: 16,
  Log1p: 17,
  Expm1: 18,
  Floor: 19,
  Ceil: 20,
  Sign: 21,
  Sin: 22,
  Cos: 23,
  Round: 24,
  ClipByValue: 25,
};
const UNARY_WITH_ALPHA = new Set(['Step', 'LeakyRelu']);

export const BINARY_OPS: Record<string, number> = {
  Add: 0,
  Sub: 1,
  Multiply: 2,
  RealDiv: 3,
  Maximum: 4,
  Minimum: 5,
  Pow: 6,
  SquaredDifference: 7,
  Greater: 8,
  GreaterEqual: 9,
  Less: 10,
  LessEqual: 11,
  Equal: 12,
  NotEqual: 13,
};
const COMPARISONS = new Set(['Greater', 'GreaterEqual', 'Less', 'LessEqual', 'Equal', 'NotEqual']);
const INT_ARITHMETIC = new Set(['Add', 'Sub', 'Multiply', 'Maximum', 'Minimum', 'SquaredDifference']);

const REDUCE = { Sum: 0, Mean: 1, Prod: 2, Max: 3, Min: 4, ArgMax: 5, ArgMin: 6 } as const;

const FUSED_ACTIVATIONS: Record<string, number> = {
  linear: -1,
  relu: UNARY_OPS.Relu,
  relu6: UNARY_OPS.Relu6,
  elu: UNARY_OPS.Elu,
  leakyrelu: UNARY_OPS.LeakyRelu,
  sigmoid: UNARY_OPS.Sigmoid,
};

const { util, backend_util } = tf;

/**
 * The values of `t` as the typed array of `dtype`. The cpu backend sometimes keeps another array
 * type under a dtype (a cast from int32 to float32 just relabels the Int32Array), so those are
 * converted; complex and string tensors give null and go to the JS kernel.
 */
function valuesAs(b: CpuBackendLike, t: TensorInfo, dtype: DataType): Values | null {
  const v = b.data.get(t.dataId).values;
  switch (dtype) {
    case 'float32':
      if (v instanceof Float32Array) return v;
      return v instanceof Int32Array || v instanceof Uint8Array ? new Float32Array(v) : null;
    case 'int32':
      if (v instanceof Int32Array) return v;
      return v instanceof Uint8Array || v instanceof Float32Array ? Int32Array.from(v) : null;
    case 'bool':
      if (v instanceof Uint8Array) return v;
      return null;
    default:
      return null;
  }
}

function isNumeric(dtype: DataType): boolean {
  return dtype === 'float32' || dtype === 'int32' || dtype === 'bool';
}

/** Per output axis, the operand's element stride, or 0 where it is broadcast. */
function broadcastStrides(shape: number[], outShape: number[]): number[] {
  const strides = util.computeStrides(shape);
  const offset = outShape.length - shape.length;
  return outShape.map((d, i) => {
    const j = i - offset;
    if (j < 0 || shape[j] === 1) return 0;
    return j === shape.length - 1 ? 1 : strides[j];
  });
}

function size(shape: number[]): number {
  return util.sizeFromShape(shape);
}

/**
 * A native kernel. `orig` is the JS kernel for cases it does not cover (counted as fallbacks);
 * `js` is the same kernel for cases where the JS one is already optimal (zero-copy views, relabels).
 */
type Native = (args: KernelArgs, orig: KernelFunc, js: KernelFunc) => TensorInfo | TensorInfo[];

export function nativeKernels(addon: NativeAddon, pool: BufferPool): Map<string, Native> {
  const newArray = (dtype: DataType, n: number, zeroed = false) => pool.alloc(dtype, n, zeroed);
  const kernels = new Map<string, Native>();
  const backendOf = (args: KernelArgs) => args.backend as unknown as CpuBackendLike;

  for (const [name, op] of Object.entries(UNARY_OPS)) {
    const withAlpha = UNARY_WITH_ALPHA.has(name);
    kernels.set(name, (args, orig) => {
      const x = args.inputs.x as TensorInfo;
      if (x.dtype !== 'float32') return orig(args);
      const b = backendOf(args);
      const xv = valuesAs(b, x, 'float32') as Float32Array | null;
      if (!xv) return orig(args);
      const out = newArray('float32', size(x.shape)) as Float32Array;
      const attrs = args.attrs as NamedAttrMap;
      const alpha = withAlpha ? Number(attrs.alpha ?? 0) : 0;
      if (name === 'ClipByValue') addon.unary(op, xv, out, 0, Number(attrs.clipValueMin), Number(attrs.clipValueMax));
      else addon.unary(op, xv, out, alpha);
      return b.makeTensorInfo(x.shape, 'float32', out);
    });
  }

  for (const [name, op] of Object.entries(BINARY_OPS)) {
    const comparison = COMPARISONS.has(name);
    kernels.set(name, (args, orig) => {
      const { a, b: bt } = args.inputs as { a: TensorInfo; b: TensorInfo };
      const dtype = a.dtype;
      if (dtype !== bt.dtype || (dtype !== 'float32' && dtype !== 'int32')) return orig(args);
      if (dtype === 'int32' && !comparison && !INT_ARITHMETIC.has(name)) return orig(args);
      const be = backendOf(args);
      const av = valuesAs(be, a, dtype);
      const bv = valuesAs(be, bt, dtype);
      if (!av || !bv) return orig(args);
      const outShape = backend_util.assertAndGetBroadcastShape(a.shape, bt.shape);
      const outDtype: DataType = comparison ? 'bool' : dtype;
      const out = newArray(outDtype, size(outShape)) as Values;
      const ok = addon.binary(op, av, bv, out, outShape, broadcastStrides(a.shape, outShape), broadcastStrides(bt.shape, outShape));
      if (!ok) return orig(args);
      return be.makeTensorInfo(outShape, outDtype, out);
    });
  }

  const reduction =
    (op: number, axisAttr: 'axis' | 'reductionIndices', arg: boolean): Native =>
    (args, orig) => {
      const x = args.inputs.x as TensorInfo;
      const attrs = args.attrs as NamedAttrMap;
      let inDtype: DataType;
      let outDtype: DataType;
      if (arg) {
        if (x.dtype !== 'float32' && x.dtype !== 'int32') return orig(args);
        inDtype = x.dtype;
        outDtype = 'int32';
      } else if (op === REDUCE.Mean) {
        if (x.dtype !== 'float32' && x.dtype !== 'int32') return orig(args);
        inDtype = x.dtype;
        outDtype = 'float32';
      } else if (op === REDUCE.Sum && x.dtype === 'bool') {
        inDtype = 'bool';
        outDtype = 'int32';
      } else {
        if (x.dtype !== 'float32' && x.dtype !== 'int32') return orig(args);
        inDtype = x.dtype;
        outDtype = x.dtype;
      }
      const axes = util.parseAxisParam(attrs[axisAttr] as number | number[], x.shape);
      if (arg && axes.length !== 1) return orig(args);
      const [outShape, reduceShape] = backend_util.computeOutAndReduceShapes(x.shape, axes);
      if (size(reduceShape) === 0 || size(outShape) === 0) return orig(args);
      const b = backendOf(args);
      const xv = valuesAs(b, x, inDtype);
      if (!xv) return orig(args);
      const out = newArray(outDtype, size(outShape)) as Values;
      const mask = x.shape.map((_, i) => (axes.includes(i) ? 1 : 0));
      if (!addon.reduce(op, xv, out, x.shape, mask)) return orig(args);
      const shape = !arg && attrs.keepDims ? backend_util.expandShapeToKeepDim(outShape, axes) : outShape;
      return b.makeTensorInfo(shape, outDtype, out);
    };
  kernels.set('Sum', reduction(REDUCE.Sum, 'axis', false));
  kernels.set('Mean', reduction(REDUCE.Mean, 'axis', false));
  kernels.set('Prod', reduction(REDUCE.Prod, 'axis', false));
  kernels.set('Max', reduction(REDUCE.Max, 'reductionIndices', false));
  kernels.set('Min', reduction(REDUCE.Min, 'axis', false));
  kernels.set('ArgMax', reduction(REDUCE.ArgMax, 'axis', true));
  kernels.set('ArgMin', reduction(REDUCE.ArgMin, 'axis', true));

  kernels.set('Softmax', (args, orig) => {
    const x = args.inputs.logits as TensorInfo;
    const dim = Number((args.attrs as NamedAttrMap).dim);
    const rank = x.shape.length;
    if (x.dtype !== 'float32' || rank === 0 || (dim !== -1 && dim !== rank - 1)) return orig(args);
    const cols = x.shape[rank - 1];
    const n = size(x.shape);
    if (cols === 0 || n === 0) return orig(args);
    const b = backendOf(args);
    const xv = valuesAs(b, x, 'float32') as Float32Array | null;
    if (!xv) return orig(args);
    const out = newArray('float32', n) as Float32Array;
    addon.softmax(xv, out, n / cols, cols);
    return b.makeTensorInfo(x.shape, 'float32', out);
  });

  const matmul = (args: KernelArgs, orig: KernelFunc, fused: boolean): TensorInfo | TensorInfo[] => {
    const { a, b: bt } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const bias = args.inputs.bias as TensorInfo | undefined;
    const attrs = args.attrs as NamedAttrMap;
    const transposeA = Boolean(attrs.transposeA);
    const transposeB = Boolean(attrs.transposeB);
    if (a.dtype !== 'float32' || bt.dtype !== 'float32') return orig(args);
    const aRank = a.shape.length;
    const bRank = bt.shape.length;
    if (aRank < 2 || bRank < 2) return orig(args);
    let act = -1;
    let alpha = 0;
    if (fused) {
      const activation = String(attrs.activation ?? 'linear');
      if (!(activation in FUSED_ACTIVATIONS)) return orig(args);
      act = FUSED_ACTIVATIONS[activation];
      alpha = Number(attrs.leakyreluAlpha ?? 0.2);
      if (bias && bias.dtype !== 'float32') return orig(args);
    }
    const k = transposeA ? a.shape[aRank - 2] : a.shape[aRank - 1];
    const kB = transposeB ? bt.shape[bRank - 1] : bt.shape[bRank - 2];
    if (k !== kB) return orig(args); // the JS kernel raises the usual error
    const m = transposeA ? a.shape[aRank - 1] : a.shape[aRank - 2];
    const n = transposeB ? bt.shape[bRank - 2] : bt.shape[bRank - 1];
    const outerA = a.shape.slice(0, -2);
    const outerB = bt.shape.slice(0, -2);
    const outer = backend_util.assertAndGetBroadcastShape(outerA, outerB);
    const outShape = [...outer, m, n];
    const batch = size(outer);
    const batchA = size(outerA);
    const batchB = size(outerB);
    let aStep = 1;
    let bStep = 1;
    let aIdx: Int32Array | null = null;
    let bIdx: Int32Array | null = null;
    if (batchA !== batch || batchB !== batch) {
      // Proper broadcasting of the batch axes (numpy/TF rules).
      const sa = broadcastStrides(outerA, outer);
      const sb = broadcastStrides(outerB, outer);
      if (batchA === 1) aStep = 0;
      else if (batchA !== batch) aIdx = batchIndices(outer, sa);
      if (batchB === 1) bStep = 0;
      else if (batchB !== batch) bIdx = batchIndices(outer, sb);
    }
    const be = backendOf(args);
    const av = valuesAs(be, a, 'float32') as Float32Array | null;
    const bv = valuesAs(be, bt, 'float32') as Float32Array | null;
    if (!av || !bv) return orig(args);
    let biasRow: Float32Array | null = null;
    let biasLater: TensorInfo | null = null;
    let biasLaterV: Values | null = null;
    if (bias) {
      const bshape = bias.shape.filter((d, i) => !(d === 1 && i < bias.shape.length - 1));
      const full = backend_util.assertAndGetBroadcastShape(outShape, bias.shape);
      if (full.length !== outShape.length || full.some((d, i) => d !== outShape[i])) return orig(args);
      if (bshape.length === 1 && bshape[0] === n) {
        biasRow = valuesAs(be, bias, 'float32') as Float32Array | null;
        if (!biasRow) return orig(args);
      } else {
        biasLater = bias;
        biasLaterV = valuesAs(be, bias, 'float32');
        if (!biasLaterV) return orig(args);
      }
    }
    const out = newArray('float32', size(outShape), k === 0) as Float32Array;
    addon.matmul(av, bv, out, batch, m, n, k, transposeA, transposeB, aStep, bStep, aIdx, bIdx, biasRow, biasLater ? -1 : act, alpha);
    if (biasLater && biasLaterV) {
      addon.binary(BINARY_OPS.Add, out, biasLaterV, out, outShape, broadcastStrides(outShape, outShape), broadcastStrides(biasLater.shape, outShape));
      if (act >= 0) addon.unary(act, out, out, alpha);
    }
    return be.makeTensorInfo(outShape, 'float32', out);
  };
  kernels.set('BatchMatMul', (args, orig) => matmul(args, orig, false));
  kernels.set('_FusedMatMul', (args, orig) => matmul(args, orig, true));

  kernels.set('Transpose', (args, orig) => {
    const x = args.inputs.x as TensorInfo;
    const perm = (args.attrs as NamedAttrMap).perm as number[];
    if (!isNumeric(x.dtype)) return orig(args);
    const b = backendOf(args);
    const xv = valuesAs(b, x, x.dtype);
    if (!xv) return orig(args);
    const outShape = perm.map((p) => x.shape[p]);
    const out = newArray(x.dtype, size(x.shape)) as Values;
    addon.transpose(xv, out, x.shape, perm);
    return b.makeTensorInfo(outShape, x.dtype, out);
  });

  kernels.set('Slice', (args, orig, js) => {
    const x = args.inputs.x as TensorInfo;
    const attrs = args.attrs as NamedAttrMap;
    if (!isNumeric(x.dtype)) return orig(args);
    const [begin, sz] = tf.slice_util.parseSliceParams(x, attrs.begin as number | number[], attrs.size as number | number[]);
    tf.slice_util.assertParamsValid(x, begin, sz);
    // A contiguous slice is a zero-copy view in the JS kernel.
    if (tf.slice_util.isSliceContinous(x.shape, begin, sz)) return js(args);
    const b = backendOf(args);
    const xv = valuesAs(b, x, x.dtype);
    if (!xv) return orig(args);
    const out = newArray(x.dtype, size(sz)) as Values;
    addon.slice(xv, out, x.shape, begin, sz);
    return b.makeTensorInfo(sz, x.dtype, out);
  });

  // The JS SplitV/Unpack slice each piece with the generic element-by-element path unless the
  // pieces are contiguous, which is what makes splitting a fused qkv projection slow there.
  const pieces = (args: KernelArgs, orig: KernelFunc, js: KernelFunc, x: TensorInfo, axis: number, sizes: number[], drop: boolean) => {
    const b = backendOf(args);
    const xv = isNumeric(x.dtype) ? valuesAs(b, x, x.dtype) : null;
    if (!xv) return orig(args);
    const outer = size(x.shape.slice(0, axis));
    if (outer === 1) return js(args); // contiguous pieces: zero-copy views in the JS kernel
    const begin = x.shape.map(() => 0);
    const outs: TensorInfo[] = [];
    for (const s of sizes) {
      const sz = x.shape.slice();
      sz[axis] = s;
      const out = newArray(x.dtype, size(sz)) as Values;
      addon.slice(xv, out, x.shape, begin, sz);
      const shape = drop ? sz.filter((_, i) => i !== axis) : sz;
      outs.push(b.makeTensorInfo(shape, x.dtype, out));
      begin[axis] += s;
    }
    return outs;
  };

  kernels.set('SplitV', (args, orig, js) => {
    const x = args.inputs.x as TensorInfo;
    const attrs = args.attrs as NamedAttrMap;
    const axis = util.parseAxisParam(attrs.axis as number, x.shape)[0];
    const sizes = backend_util.prepareSplitSize(x, attrs.numOrSizeSplits as number | number[], axis);
    return pieces(args, orig, js, x, axis, sizes, false);
  });

  kernels.set('Unpack', (args, orig, js) => {
    const x = args.inputs.value as TensorInfo;
    const axis = util.parseAxisParam((args.attrs as NamedAttrMap).axis as number, x.shape)[0];
    return pieces(args, orig, js, x, axis, new Array<number>(x.shape[axis]).fill(1), true);
  });

  kernels.set('Pack', (args, orig) => {
    const inputs = Object.values(args.inputs) as TensorInfo[];
    if (inputs.length < 2) return orig(args);
    const { dtype, shape } = inputs[0];
    if (!isNumeric(dtype) || inputs.some((t) => t.dtype !== dtype || !util.arraysEqual(t.shape, shape))) return orig(args);
    const axis = util.parseAxisParam((args.attrs as NamedAttrMap).axis as number, [...shape, 1])[0];
    const outShape = [...shape.slice(0, axis), inputs.length, ...shape.slice(axis)];
    if (size(outShape) === 0) return orig(args);
    const b = backendOf(args);
    const vals: Values[] = [];
    for (const t of inputs) {
      const v = valuesAs(b, t, dtype);
      if (!v) return orig(args);
      vals.push(v);
    }
    const out = newArray(dtype, size(outShape)) as Values;
    const inner = size(shape.slice(axis));
    addon.concat(
      vals,
      out,
      size(shape.slice(0, axis)),
      vals.map(() => inner),
    );
    return b.makeTensorInfo(outShape, dtype, out);
  });

  // Gradients of Sum/Mean fill whole activations with ones; the JS kernels allocate those
  // outside the buffer pool.
  const filled = (args: KernelArgs, orig: KernelFunc, shape: number[], dtype: DataType, value: number) => {
    if (!isNumeric(dtype)) return orig(args);
    const out = newArray(dtype, size(shape)) as Values;
    out.fill(value);
    return backendOf(args).makeTensorInfo(shape, dtype, out);
  };
  kernels.set('Fill', (args, orig) => {
    const attrs = args.attrs as NamedAttrMap;
    const value = attrs.value as number | string;
    if (typeof value !== 'number') return orig(args);
    return filled(args, orig, attrs.shape as number[], (attrs.dtype as DataType | undefined) ?? util.inferDtype(value), value);
  });
  kernels.set('ZerosLike', (args, orig) => {
    const x = args.inputs.x as TensorInfo;
    return filled(args, orig, x.shape, x.dtype, 0);
  });
  kernels.set('OnesLike', (args, orig) => {
    const x = args.inputs.x as TensorInfo;
    return filled(args, orig, x.shape, x.dtype, 1);
  });

  kernels.set('PadV2', (args, orig) => {
    const x = args.inputs.x as TensorInfo;
    const attrs = args.attrs as NamedAttrMap;
    if (!isNumeric(x.dtype)) return orig(args);
    const paddings = attrs.paddings as Array<[number, number]>;
    const value = Number(attrs.constantValue ?? 0);
    const outShape = paddings.map((p, i) => p[0] + x.shape[i] + p[1]);
    const b = backendOf(args);
    const xv = valuesAs(b, x, x.dtype);
    if (!xv) return orig(args);
    const out = newArray(x.dtype, size(outShape), true) as Values;
    if (
      !addon.pad(
        xv,
        out,
        x.shape,
        paddings.map((p) => p[0]),
        outShape,
        value,
      )
    )
      return orig(args);
    return b.makeTensorInfo(outShape, x.dtype, out);
  });

  kernels.set('Concat', (args, orig, js) => {
    const inputs = Object.values(args.inputs) as TensorInfo[];
    if (inputs.length === 0) return orig(args);
    const dtype = inputs[0].dtype;
    if (!isNumeric(dtype) || inputs.some((t) => t.dtype !== dtype)) return orig(args);
    const axis = util.parseAxisParam((args.attrs as NamedAttrMap).axis as number, inputs[0].shape)[0];
    const shapes = inputs.map((t) => t.shape);
    backend_util.assertParamsConsistent(shapes, axis);
    const outShape = backend_util.computeOutShape(shapes, axis);
    const nonEmpty = inputs.filter((t) => size(t.shape) > 0);
    if (size(outShape) === 0 || nonEmpty.length < 2) return js(args); // nothing to copy
    const b = backendOf(args);
    const vals: Values[] = [];
    for (const t of nonEmpty) {
      const v = valuesAs(b, t, dtype);
      if (!v) return orig(args);
      vals.push(v);
    }
    const outer = size(outShape.slice(0, axis));
    const out = newArray(dtype, size(outShape)) as Values;
    addon.concat(
      vals,
      out,
      outer,
      nonEmpty.map((t) => size(t.shape.slice(axis))),
    );
    return b.makeTensorInfo(outShape, dtype, out);
  });

  kernels.set('Tile', (args, orig) => {
    const x = args.inputs.x as TensorInfo;
    const reps = (args.attrs as NamedAttrMap).reps as number[];
    if (!isNumeric(x.dtype) || reps.length !== x.shape.length) return orig(args);
    const b = backendOf(args);
    const xv = valuesAs(b, x, x.dtype);
    if (!xv) return orig(args);
    const outShape = x.shape.map((d, i) => d * reps[i]);
    const out = newArray(x.dtype, size(outShape)) as Values;
    addon.tile(xv, out, x.shape, reps);
    return b.makeTensorInfo(outShape, x.dtype, out);
  });

  kernels.set('GatherV2', (args, orig) => {
    const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
    const attrs = args.attrs as NamedAttrMap;
    if (!isNumeric(x.dtype) || indices.dtype !== 'int32') return orig(args);
    const axis = util.parseAxisParam(attrs.axis as number, x.shape)[0];
    const info = backend_util.segment_util.collectGatherOpShapeInfo(x, indices, axis, Number(attrs.batchDims ?? 0));
    const b = backendOf(args);
    const xv = valuesAs(b, x, x.dtype);
    const iv = valuesAs(b, indices, 'int32') as Int32Array | null;
    if (!xv || !iv) return orig(args);
    const out = newArray(x.dtype, size(info.outputShape)) as Values;
    if (out.length > 0 || iv.length > 0) {
      const bad = addon.gather(xv, iv, out, info.batchSize, info.outerSize, info.dimSize, info.sliceSize);
      if (bad >= 0) {
        throw new Error(`GatherV2: the index value ${iv[bad]} is not in [0, ${x.shape[axis] - 1}]`);
      }
    }
    return b.makeTensorInfo(info.outputShape, x.dtype, out);
  });

  kernels.set('UnsortedSegmentSum', (args, orig) => {
    const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
    const numSegments = Number((args.attrs as NamedAttrMap).numSegments);
    // int32 stays with the JS kernel, which returns float32 for it.
    if (x.dtype !== 'float32' || segmentIds.dtype !== 'int32') return orig(args);
    const b = backendOf(args);
    const xv = valuesAs(b, x, x.dtype);
    const ids = valuesAs(b, segmentIds, 'int32') as Int32Array | null;
    if (!xv || !ids) return orig(args);
    const rest = x.shape.slice(segmentIds.shape.length);
    const outShape = [numSegments, ...rest];
    const out = newArray(x.dtype, size(outShape), true) as Values;
    if (!addon.segmentSum(xv, ids, out, size(rest), numSegments)) return orig(args);
    return b.makeTensorInfo(outShape, x.dtype, out);
  });

  // The augmentations' random resized crop: the JS kernel takes about 16 ns an output value (14 ms
  // for a batch of 128 faces of 48 px). Same arithmetic (double coordinates, one rounding).
  kernels.set('CropAndResize', (args, orig) => {
    const { image, boxes, boxInd } = args.inputs as { image: TensorInfo; boxes: TensorInfo; boxInd: TensorInfo };
    const attrs = args.attrs as NamedAttrMap;
    const method = attrs.method as string;
    const [cropH, cropW] = attrs.cropSize as [number, number];
    if (image.dtype !== 'float32' || boxes.dtype !== 'float32' || boxInd.dtype !== 'int32' || image.shape.length !== 4) return orig(args);
    if (method !== 'bilinear' && method !== 'nearest') return orig(args);
    const b = backendOf(args);
    const iv = valuesAs(b, image, 'float32') as Float32Array | null;
    const bv = valuesAs(b, boxes, 'float32') as Float32Array | null;
    const ix = valuesAs(b, boxInd, 'int32') as Int32Array | null;
    if (!iv || !bv || !ix) return orig(args);
    const outShape = [boxes.shape[0]!, cropH, cropW, image.shape[3]!];
    const out = newArray('float32', size(outShape)) as Float32Array;
    if (!addon.cropAndResize(iv, bv, ix, out, image.shape, [cropH, cropW], method === 'bilinear', Number(attrs.extrapolationValue ?? 0))) return orig(args);
    return b.makeTensorInfo(outShape, 'float32', out);
  });

  kernels.set('OneHot', (args, orig) => {
    const indices = args.inputs.indices as TensorInfo;
    const attrs = args.attrs as NamedAttrMap;
    const dtype = attrs.dtype as DataType;
    if (indices.dtype !== 'int32' || (dtype !== 'float32' && dtype !== 'int32')) return orig(args);
    const depth = Number(attrs.depth);
    const b = backendOf(args);
    const iv = valuesAs(b, indices, 'int32') as Int32Array | null;
    if (!iv) return orig(args);
    const out = newArray(dtype, iv.length * depth) as Values;
    if (!addon.oneHot(iv, out, depth, Number(attrs.onValue ?? 1), Number(attrs.offValue ?? 0))) return orig(args);
    return b.makeTensorInfo([...indices.shape, depth], dtype, out);
  });

  // RandAugment's Equalize counts 256 bins per image and channel; the JS kernel reads and writes
  // every element through TensorBuffer.get/set, about 1 ms for a few images. Same counts, in
  // typed-array loops; a negative value goes to the JS kernel, which throws its own error.
  kernels.set('DenseBincount', (args, orig) => {
    const { x, weights } = args.inputs as { x: TensorInfo; weights: TensorInfo };
    const attrs = args.attrs as NamedAttrMap;
    const binSize = Number(attrs.size);
    const binary = Boolean(attrs.binaryOutput);
    const rank = x.shape.length;
    const weighted = size(weights.shape) > 0;
    if (x.dtype !== 'int32' || (rank !== 1 && rank !== 2) || !Number.isInteger(binSize) || binSize < 0) return orig(args);
    if (weights.dtype !== 'float32' && weights.dtype !== 'int32') return orig(args);
    // The JS kernel ignores binaryOutput for a vector, and weights with it.
    if ((binary && (rank === 1 || weighted)) || (weighted && size(weights.shape) !== size(x.shape))) return orig(args);
    const b = backendOf(args);
    const xv = valuesAs(b, x, 'int32') as Int32Array | null;
    const wv = weighted ? (valuesAs(b, weights, weights.dtype) as Float32Array | Int32Array | null) : null;
    if (!xv || (weighted && !wv)) return orig(args);
    const rows = rank === 1 ? 1 : x.shape[0]!;
    const cols = rank === 1 ? xv.length : x.shape[1]!;
    const out = newArray(weights.dtype, rows * binSize, true) as Float32Array | Int32Array;
    for (let i = 0; i < xv.length; i++) if (xv[i]! < 0) return orig(args);
    for (let r = 0; r < rows; r++) {
      const base = r * binSize;
      for (let j = r * cols, end = j + cols; j < end; j++) {
        const v = xv[j]!;
        if (v >= binSize) continue;
        if (binary) out[base + v] = 1;
        else out[base + v]! += wv ? wv[j]! : 1;
      }
    }
    return b.makeTensorInfo(rank === 1 ? [binSize] : [rows, binSize], weights.dtype, out);
  });

  kernels.set('Select', (args, orig) => {
    const { condition, t, e } = args.inputs as { condition: TensorInfo; t: TensorInfo; e: TensorInfo };
    const condRank = condition.shape.length;
    if (condition.dtype !== 'bool' || t.dtype !== e.dtype || !isNumeric(t.dtype) || condRank === 0) return orig(args);
    const inner = condRank > 1 || t.shape.length === 1 ? 1 : size(t.shape.slice(1));
    const n = size(t.shape);
    if (size(condition.shape) * inner !== n || size(e.shape) !== n) return orig(args);
    const b = backendOf(args);
    const cv = valuesAs(b, condition, 'bool') as Uint8Array | null;
    const tv = valuesAs(b, t, t.dtype);
    const ev = valuesAs(b, e, t.dtype);
    if (!cv || !tv || !ev) return orig(args);
    const out = newArray(t.dtype, n) as Values;
    if (!addon.select(cv, tv, ev, out, inner)) return orig(args);
    return b.makeTensorInfo(t.shape, t.dtype, out);
  });

  kernels.set('Cast', (args, orig, js) => {
    const x = args.inputs.x as TensorInfo;
    const dtype = (args.attrs as NamedAttrMap).dtype as DataType;
    // Widening casts are free relabels in the JS kernel; only the converting ones run here.
    const lossy = (x.dtype === 'float32' && (dtype === 'int32' || dtype === 'bool')) || (x.dtype === 'int32' && dtype === 'bool');
    if (!lossy) return js(args);
    const b = backendOf(args);
    const v = b.data.get(x.dataId).values;
    const expected = x.dtype === 'float32' ? v instanceof Float32Array : v instanceof Int32Array;
    if (!expected) return orig(args);
    const out = newArray(dtype, size(x.shape)) as Values;
    if (!addon.cast(v as Values, out)) return orig(args);
    return b.makeTensorInfo(x.shape, dtype, out);
  });

  // Convolutions, pooling and batch normalisation (csrc/conv.cc), NHWC float32 only.
  type ConvInfo = ReturnType<typeof backend_util.computeConv2DInfo>;
  const geometry = (c: ConvInfo, depthwise: boolean): number[] => [
    c.batchSize,
    c.inHeight,
    c.inWidth,
    c.inChannels,
    c.filterHeight,
    c.filterWidth,
    depthwise ? c.outChannels / c.inChannels : c.outChannels,
    c.outHeight,
    c.outWidth,
    c.strideHeight,
    c.strideWidth,
    c.dilationHeight,
    c.dilationWidth,
    c.padInfo.top,
    c.padInfo.left,
  ];
  const channelsLast = (attrs: NamedAttrMap) => attrs.dataFormat === undefined || attrs.dataFormat === 'NHWC' || attrs.dataFormat === 'channelsLast';
  const f32In = (b: CpuBackendLike, ...ts: TensorInfo[]) => ts.map((t) => (t.dtype === 'float32' ? (valuesAs(b, t, 'float32') as Float32Array | null) : null));
  const convInfoOf = (inShape: number[], filterShape: number[], attrs: NamedAttrMap, depthwise: boolean, dilations: unknown = attrs.dilations) =>
    backend_util.computeConv2DInfo(
      inShape as [number, number, number, number],
      filterShape as [number, number, number, number],
      attrs.strides as [number, number],
      (dilations ?? 1) as [number, number],
      attrs.pad as 'valid',
      attrs.dimRoundingMode as 'floor' | undefined,
      depthwise,
      'channelsLast',
    );
  const usable = (c: ConvInfo) => size(c.outShape) > 0 && size(c.inShape) > 0 && c.padInfo.top >= 0 && c.padInfo.left >= 0;

  const conv =
    (depthwise: boolean): Native =>
    (args, orig) => {
      const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
      const attrs = args.attrs as NamedAttrMap;
      if (x.shape.length !== 4 || !channelsLast(attrs)) return orig(args);
      const b = backendOf(args);
      const [xv, fv] = f32In(b, x, filter);
      if (!xv || !fv) return orig(args);
      const c = convInfoOf(x.shape, filter.shape, attrs, depthwise);
      if (!usable(c)) return orig(args);
      const out = newArray('float32', size(c.outShape)) as Float32Array;
      (depthwise ? addon.depthwiseConv2d : addon.conv2d)(xv, fv, out, geometry(c, depthwise));
      return b.makeTensorInfo(c.outShape, 'float32', out);
    };
  kernels.set('Conv2D', conv(false));
  kernels.set('DepthwiseConv2dNative', conv(true));

  const convBackpropInput =
    (depthwise: boolean): Native =>
    (args, orig) => {
      const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
      const attrs = args.attrs as NamedAttrMap;
      const inputShape = attrs.inputShape as number[];
      if (inputShape.length !== 4 || !channelsLast(attrs)) return orig(args);
      const b = backendOf(args);
      const [dyv, fv] = f32In(b, dy, filter);
      if (!dyv || !fv) return orig(args);
      const c = convInfoOf(inputShape, filter.shape, attrs, depthwise, depthwise ? attrs.dilations : 1);
      if (!usable(c) || !util.arraysEqual(c.outShape, dy.shape)) return orig(args);
      const dx = newArray('float32', size(inputShape)) as Float32Array;
      (depthwise ? addon.depthwiseConv2dBackpropInput : addon.conv2dBackpropInput)(dyv, fv, dx, geometry(c, depthwise));
      return b.makeTensorInfo(inputShape, 'float32', dx);
    };
  kernels.set('Conv2DBackpropInput', convBackpropInput(false));
  kernels.set('DepthwiseConv2dNativeBackpropInput', convBackpropInput(true));

  const convBackpropFilter =
    (depthwise: boolean): Native =>
    (args, orig) => {
      const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
      const attrs = args.attrs as NamedAttrMap;
      const filterShape = attrs.filterShape as number[];
      if (x.shape.length !== 4 || !channelsLast(attrs)) return orig(args);
      const b = backendOf(args);
      const [xv, dyv] = f32In(b, x, dy);
      if (!xv || !dyv) return orig(args);
      const c = convInfoOf(x.shape, filterShape, attrs, depthwise, depthwise ? attrs.dilations : 1);
      if (!usable(c) || !util.arraysEqual(c.outShape, dy.shape)) return orig(args);
      const df = newArray('float32', size(filterShape)) as Float32Array;
      (depthwise ? addon.depthwiseConv2dBackpropFilter : addon.conv2dBackpropFilter)(xv, dyv, df, geometry(c, depthwise));
      return b.makeTensorInfo(filterShape, 'float32', df);
    };
  kernels.set('Conv2DBackpropFilter', convBackpropFilter(false));
  kernels.set('DepthwiseConv2dNativeBackpropFilter', convBackpropFilter(true));

  // The fused forms: the convolution, then bias and activation (the backward runs the plain kernels).
  const fusedConv =
    (depthwise: boolean): Native =>
    (args, orig) => {
      const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
      const attrs = args.attrs as NamedAttrMap;
      const activation = String(attrs.activation ?? 'linear');
      if (preluActivationWeights || !(activation in FUSED_ACTIVATIONS) || !x || !filter || x.shape.length !== 4 || !channelsLast(attrs)) return orig(args);
      const b = backendOf(args);
      const [xv, fv] = f32In(b, x, filter);
      const biasV = bias ? f32In(b, bias)[0] : null;
      if (!xv || !fv || (bias && !biasV)) return orig(args);
      const c = convInfoOf(x.shape, filter.shape, attrs, depthwise);
      if (!usable(c)) return orig(args);
      let outShape: number[] = c.outShape;
      if (bias) {
        outShape = backend_util.assertAndGetBroadcastShape(c.outShape, bias.shape);
        if (!util.arraysEqual(outShape, c.outShape)) return orig(args);
      }
      const out = newArray('float32', size(c.outShape)) as Float32Array;
      (depthwise ? addon.depthwiseConv2d : addon.conv2d)(xv, fv, out, geometry(c, depthwise));
      if (bias && biasV) {
        addon.binary(BINARY_OPS.Add, out, biasV, out, outShape, broadcastStrides(outShape, outShape), broadcastStrides(bias.shape, outShape));
      }
      const act = FUSED_ACTIVATIONS[activation]!;
      if (act >= 0) addon.unary(act, out, out, Number(attrs.leakyreluAlpha ?? 0.2));
      return b.makeTensorInfo(c.outShape, 'float32', out);
    };
  kernels.set('FusedConv2D', fusedConv(false));
  kernels.set('FusedDepthwiseConv2D', fusedConv(true));

  const poolInfoOf = (shape: number[], attrs: NamedAttrMap) =>
    backend_util.computePool2DInfo(
      shape as [number, number, number, number],
      attrs.filterSize as [number, number],
      attrs.strides as [number, number],
      1,
      attrs.pad as 'valid',
      attrs.dimRoundingMode as 'floor' | undefined,
    );

  const poolKernel =
    (max: boolean): Native =>
    (args, orig, js) => {
      const x = args.inputs.x as TensorInfo;
      const attrs = args.attrs as NamedAttrMap;
      if (x.shape.length !== 4) return orig(args);
      const c = poolInfoOf(x.shape, attrs);
      if (c.filterWidth === 1 && c.filterHeight === 1 && util.arraysEqual(c.inShape, c.outShape)) return js(args); // a relabel
      const b = backendOf(args);
      const [xv] = f32In(b, x);
      if (!xv || !usable(c)) return orig(args);
      const out = newArray('float32', size(c.outShape)) as Float32Array;
      (max ? addon.maxPool : addon.avgPool)(xv, out, geometry(c, false));
      return b.makeTensorInfo(c.outShape, 'float32', out);
    };
  kernels.set('MaxPool', poolKernel(true));
  kernels.set('AvgPool', poolKernel(false));

  kernels.set('MaxPoolGrad', (args, orig) => {
    const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
    const attrs = args.attrs as NamedAttrMap;
    if (input.shape.length !== 4) return orig(args);
    const b = backendOf(args);
    const [dyv, xv] = f32In(b, dy, input);
    const c = poolInfoOf(input.shape, attrs);
    if (!dyv || !xv || !usable(c) || !util.arraysEqual(c.outShape, dy.shape)) return orig(args);
    const dx = newArray('float32', size(input.shape)) as Float32Array;
    addon.maxPoolGrad(dyv, xv, dx, geometry(c, false));
    return b.makeTensorInfo(input.shape, 'float32', dx);
  });

  // The JS kernel spreads each output's gradient over the window's whole area, pixels outside the
  // image included, while the forward averages over the pixels inside: with padding its gradient
  // is not that of the forward. This one is (test/native/conv.test.ts checks it).
  kernels.set('AvgPoolGrad', (args, orig) => {
    const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
    const attrs = args.attrs as NamedAttrMap;
    if (input.shape.length !== 4) return orig(args);
    const b = backendOf(args);
    const [dyv] = f32In(b, dy);
    const c = poolInfoOf(input.shape, attrs);
    if (!dyv || !usable(c) || !util.arraysEqual(c.outShape, dy.shape)) return orig(args);
    const dx = newArray('float32', size(input.shape)) as Float32Array;
    addon.avgPoolGrad(dyv, dx, geometry(c, false));
    return b.makeTensorInfo(input.shape, 'float32', dx);
  });

  kernels.set('FusedBatchNorm', (args, orig) => {
    const { x, mean, variance, offset, scale } = args.inputs as Record<string, TensorInfo | undefined>;
    if (!x || !mean || !variance) return orig(args);
    const b = backendOf(args);
    const [xv, mv, vv] = f32In(b, x, mean, variance);
    const ov = offset ? f32In(b, offset)[0] : new Float32Array(0);
    const sv = scale ? f32In(b, scale)[0] : new Float32Array(0);
    if (!xv || !mv || !vv || !ov || !sv || mv.length === 0 || vv.length === 0) return orig(args);
    const out = newArray('float32', size(x.shape)) as Float32Array;
    addon.batchNorm(xv, mv, vv, ov, sv, out, Number((args.attrs as NamedAttrMap).varianceEpsilon ?? 0.001));
    return b.makeTensorInfo(x.shape, 'float32', out);
  });

  kernels.set('AddN', (args, orig) => {
    const inputs = Object.values(args.inputs) as TensorInfo[];
    if (inputs.length === 0) return orig(args);
    const dtype = inputs[0].dtype;
    const shape = inputs[0].shape;
    if ((dtype !== 'float32' && dtype !== 'int32') || inputs.some((t) => t.dtype !== dtype || !util.arraysEqual(t.shape, shape))) {
      return orig(args);
    }
    const b = backendOf(args);
    const vals: Values[] = [];
    for (const t of inputs) {
      const v = valuesAs(b, t, dtype);
      if (!v) return orig(args);
      vals.push(v);
    }
    const out = newArray(dtype, size(shape)) as Values;
    if (!addon.addN(vals, out)) return orig(args);
    return b.makeTensorInfo(shape, dtype, out);
  });

  return kernels;
}

/** For each output batch index, the operand's batch index under broadcasting. */
function batchIndices(outer: number[], strides: number[]): Int32Array {
  const total = size(outer);
  const idx = new Int32Array(total);
  for (let i = 0; i < total; i++) {
    let rem = i;
    let off = 0;
    for (let d = outer.length - 1; d >= 0; d--) {
      const c = rem % outer[d];
      rem = Math.floor(rem / outer[d]);
      off += c * strides[d];
    }
    idx[i] = off;
  }
  return idx;
}

/**
 * The fused AdamW step: inputs param, grad, m, v (float32, one shape); attrs lr, beta1, beta2,
 * epsilon, weightDecay (0: no decay) and step (t, counted from 1). Returns [param', m', v'] with
 * the arithmetic of AdamW.step in src/train/optimizer.ts, each float32 operation rounded alike.
 */
export function adamWKernel(addon: NativeAddon, pool: BufferPool): KernelFunc {
  return (args) => {
    const { param, grad, m, v } = args.inputs as { param: TensorInfo; grad: TensorInfo; m: TensorInfo; v: TensorInfo };
    const attrs = args.attrs as NamedAttrMap;
    const b = args.backend as unknown as CpuBackendLike;
    for (const t of [grad, m, v]) {
      if (!util.arraysEqual(t.shape, param.shape)) {
        throw new Error(`${ADAMW_KERNEL}: shapes [${param.shape}], [${grad.shape}], [${m.shape}], [${v.shape}] differ`);
      }
    }
    const values = [param, grad, m, v].map((t) => {
      if (t.dtype !== 'float32') throw new Error(`${ADAMW_KERNEL}: a ${t.dtype} input, not float32`);
      const x = valuesAs(b, t, 'float32');
      if (!x) throw new Error(`${ADAMW_KERNEL}: an input without float32 values`);
      return x as Float32Array;
    });
    const lr = Number(attrs.lr);
    const b1 = Number(attrs.beta1);
    const b2 = Number(attrs.beta2);
    const eps = Number(attrs.epsilon);
    const wd = Number(attrs.weightDecay);
    const t = Number(attrs.step);
    const stepSize = lr / (1 - Math.pow(b1, t));
    const sqrtBc2 = Math.sqrt(1 - Math.pow(b2, t));
    const decayFactor = 1 - lr * wd;
    const n = size(param.shape);
    const outs = [0, 1, 2].map(() => pool.alloc('float32', n) as Float32Array);
    addon.adamW(
      values[0]!,
      values[1]!,
      values[2]!,
      values[3]!,
      outs[0]!,
      outs[1]!,
      outs[2]!,
      b1,
      1 - b1,
      b2,
      1 - b2,
      sqrtBc2,
      eps,
      stepSize,
      decayFactor,
      wd !== 0,
    );
    return outs.map((o) => b.makeTensorInfo(param.shape, 'float32', o));
  };
}

/** A backend that counts the tensors holding each buffer (MathBackendCPU does). */
type CountingBackend = CpuBackendLike & { refCount(dataId: object): number };

/** The float32 values of x when a kernel may write them in place: one tensor holds them, and nothing else sees the buffer. */
function exclusiveValues(b: CountingBackend, pool: BufferPool, x: TensorInfo): Float32Array | null {
  const v = b.data.get(x.dataId).values;
  return x.dtype === 'float32' && v instanceof Float32Array && b.refCount(x.dataId) === 1 && pool.exclusive(v, x.dataId) ? v : null;
}

/**
 * AdamW for many weights in one call: inputs param{i}, grad{i}, m{i}, v{i} for i < attrs.count,
 * attrs as SsferAdamW's with weightDecays (one per weight, 0: none) instead of weightDecay. Each
 * weight whose param, m and v buffers nothing else can see (one tensor holds each, no view of it,
 * never read out: the buffer pool knows) is updated in place; the kernel returns an int32 [count]
 * tensor with 1 for those and 0 for the others, which the caller updates itself (SsferAdamW).
 */
export function adamWInPlaceKernel(addon: NativeAddon, pool: BufferPool): KernelFunc {
  return (args) => {
    const attrs = args.attrs as NamedAttrMap;
    const b = args.backend as unknown as CountingBackend;
    const count = Number(attrs.count);
    const decays = attrs.weightDecays as number[];
    if (!Number.isInteger(count) || count < 0 || decays.length !== count) throw new Error(`${ADAMW_IN_PLACE_KERNEL}: count and weightDecays disagree`);
    const lr = Number(attrs.lr);
    const b1 = Number(attrs.beta1);
    const b2 = Number(attrs.beta2);
    const t = Number(attrs.step);
    const done = new Int32Array(count);
    const lists: Float32Array[][] = [[], [], [], []];
    const factors: number[] = [];
    const owned = (x: TensorInfo) => exclusiveValues(b, pool, x);
    for (let i = 0; i < count; i++) {
      const [param, grad, m, v] = ['param', 'grad', 'm', 'v'].map((k) => args.inputs[`${k}${i}`] as TensorInfo | undefined);
      if (!param || !grad || !m || !v) throw new Error(`${ADAMW_IN_PLACE_KERNEL}: weight ${i} lacks an input`);
      if (![grad, m, v].every((x) => util.arraysEqual(x.shape, param.shape))) throw new Error(`${ADAMW_IN_PLACE_KERNEL}: shapes of weight ${i} differ`);
      const pv = owned(param);
      const mv = owned(m);
      const vv = owned(v);
      const gv = grad.dtype === 'float32' ? (valuesAs(b, grad, 'float32') as Float32Array | null) : null;
      if (!pv || !mv || !vv || !gv || new Set([param.dataId, m.dataId, v.dataId, grad.dataId]).size !== 4) continue;
      lists[0]!.push(pv);
      lists[1]!.push(gv);
      lists[2]!.push(mv);
      lists[3]!.push(vv);
      factors.push(decays[i] ? 1 - lr * decays[i]! : 1);
      done[i] = 1;
    }
    if (factors.length > 0) {
      addon.adamWInPlace(
        lists[0]!,
        lists[1]!,
        lists[2]!,
        lists[3]!,
        Float32Array.from(factors),
        b1,
        1 - b1,
        b2,
        1 - b2,
        Math.sqrt(1 - Math.pow(b2, t)),
        Number(attrs.epsilon),
        lr / (1 - Math.pow(b1, t)),
      );
    }
    return b.makeTensorInfo([count], 'int32', done);
  };
}

/**
 * The exponential moving average of many weights in one call, θ_ema ← d·θ_ema + (1 − d)·θ: inputs
 * target{i} (the average) and source{i} (the trained weight) for i < attrs.count, attrs.decay d.
 * Each target whose buffer nothing else can see is updated in place; the kernel returns an int32
 * [count] tensor with 1 for those and 0 for the others, which the caller updates itself. The
 * arithmetic is that of the ops it replaces, tf.add(tf.mul(θ_ema, d), tf.mul(θ, 1 − d)) in float32:
 * d and 1 − d rounded to float32, each product and the sum rounded to float32 (the addon's loop
 * has no fused multiply-add), over every weight in one native call.
 */
export function emaInPlaceKernel(addon: NativeAddon, pool: BufferPool): KernelFunc {
  return (args) => {
    const attrs = args.attrs as NamedAttrMap;
    const b = args.backend as unknown as CountingBackend;
    const count = Number(attrs.count);
    if (!Number.isInteger(count) || count < 0) throw new Error(`${EMA_IN_PLACE_KERNEL}: count must be a whole number`);
    const done = new Int32Array(count);
    const targets: Float32Array[] = [];
    const sources: Float32Array[] = [];
    for (let i = 0; i < count; i++) {
      const target = args.inputs[`target${i}`] as TensorInfo | undefined;
      const source = args.inputs[`source${i}`] as TensorInfo | undefined;
      if (!target || !source) throw new Error(`${EMA_IN_PLACE_KERNEL}: weight ${i} lacks an input`);
      if (!util.arraysEqual(target.shape, source.shape)) throw new Error(`${EMA_IN_PLACE_KERNEL}: shapes of weight ${i} differ`);
      const t = exclusiveValues(b, pool, target);
      const src = source.dtype === 'float32' ? (valuesAs(b, source, 'float32') as Float32Array | null) : null;
      if (!t || !src || target.dataId === source.dataId) continue;
      targets.push(t);
      sources.push(src);
      done[i] = 1;
    }
    // d and 1 − d rounded to float32, as the ops' scalars are.
    if (targets.length > 0) addon.emaInPlace(targets, sources, Math.fround(Number(attrs.decay)), Math.fround(1 - Number(attrs.decay)));
    return b.makeTensorInfo([count], 'int32', done);
  };
}

function f32Of(b: CpuBackendLike, t: TensorInfo, kernel: string): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`${kernel}: a ${t.dtype} input, not float32`);
  const v = valuesAs(b, t, 'float32');
  if (!v) throw new Error(`${kernel}: an input without float32 values`);
  return v as Float32Array;
}

/** Rows and width of a tensor normalised over its last axis. */
function rowsCols(shape: number[], kernel: string): [number, number] {
  if (shape.length === 0) throw new Error(`${kernel}: a scalar input`);
  const cols = shape[shape.length - 1]!;
  return [cols === 0 ? 0 : size(shape) / cols, cols];
}

/**
 * The fused kernels of the ViT layers (plugins/backbone/vit/layers.ts), with the arithmetic of
 * the op-by-op path there, each float32 operation rounded alike (row means accumulate in double):
 *  - SsferLayerNorm: inputs x [..., C], gamma [C], beta [C]; attr eps. Returns [y, mean, rstd]
 *    with mean and rstd of shape [..., 1].
 *  - SsferLayerNormGrad: inputs dy, x, mean, rstd, gamma. Returns [dx, dgamma, dbeta].
 *  - SsferGelu: input x. Returns x·Φ(x).  SsferGeluGrad: inputs dy, x. Returns dy·(Φ(x) + x·φ(x)).
 */
export function layerKernels(addon: NativeAddon, pool: BufferPool): Map<string, KernelFunc> {
  const kernels = new Map<string, KernelFunc>();
  const f32 = (n: number) => pool.alloc('float32', n) as Float32Array;

  kernels.set(LAYER_NORM_KERNEL, (args) => {
    const { x, gamma, beta } = args.inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
    const b = args.backend as unknown as CpuBackendLike;
    const [rows, cols] = rowsCols(x.shape, LAYER_NORM_KERNEL);
    if (size(gamma.shape) !== cols || size(beta.shape) !== cols) {
      throw new Error(`${LAYER_NORM_KERNEL}: gamma [${gamma.shape}] and beta [${beta.shape}] do not fit x [${x.shape}]`);
    }
    const xv = f32Of(b, x, LAYER_NORM_KERNEL);
    const gv = f32Of(b, gamma, LAYER_NORM_KERNEL);
    const bv = f32Of(b, beta, LAYER_NORM_KERNEL);
    const y = f32(rows * cols);
    const mean = f32(rows);
    const rstd = f32(rows);
    addon.layerNorm(xv, gv, bv, y, mean, rstd, rows, cols, Number((args.attrs as NamedAttrMap).eps));
    const statShape = [...x.shape.slice(0, -1), 1];
    return [b.makeTensorInfo(x.shape, 'float32', y), b.makeTensorInfo(statShape, 'float32', mean), b.makeTensorInfo(statShape, 'float32', rstd)];
  });

  kernels.set(LAYER_NORM_GRAD_KERNEL, (args) => {
    const { dy, x, mean, rstd, gamma } = args.inputs as Record<'dy' | 'x' | 'mean' | 'rstd' | 'gamma', TensorInfo>;
    const b = args.backend as unknown as CpuBackendLike;
    const [rows, cols] = rowsCols(x.shape, LAYER_NORM_GRAD_KERNEL);
    if (!util.arraysEqual(dy.shape, x.shape) || size(mean.shape) !== rows || size(rstd.shape) !== rows || size(gamma.shape) !== cols) {
      throw new Error(`${LAYER_NORM_GRAD_KERNEL}: shapes [${dy.shape}], [${x.shape}], [${mean.shape}], [${rstd.shape}], [${gamma.shape}] do not fit`);
    }
    const dx = f32(rows * cols);
    const dgamma = f32(cols);
    const dbeta = f32(cols);
    addon.layerNormGrad(
      f32Of(b, dy, LAYER_NORM_GRAD_KERNEL),
      f32Of(b, x, LAYER_NORM_GRAD_KERNEL),
      f32Of(b, mean, LAYER_NORM_GRAD_KERNEL),
      f32Of(b, rstd, LAYER_NORM_GRAD_KERNEL),
      f32Of(b, gamma, LAYER_NORM_GRAD_KERNEL),
      dx,
      dgamma,
      dbeta,
      rows,
      cols,
    );
    return [b.makeTensorInfo(x.shape, 'float32', dx), b.makeTensorInfo(gamma.shape, 'float32', dgamma), b.makeTensorInfo(gamma.shape, 'float32', dbeta)];
  });

  kernels.set(GELU_KERNEL, (args) => {
    const x = args.inputs.x as TensorInfo;
    const b = args.backend as unknown as CpuBackendLike;
    const out = f32(size(x.shape));
    addon.gelu(f32Of(b, x, GELU_KERNEL), out);
    return b.makeTensorInfo(x.shape, 'float32', out);
  });

  kernels.set(GELU_GRAD_KERNEL, (args) => {
    const { dy, x } = args.inputs as { dy: TensorInfo; x: TensorInfo };
    const b = args.backend as unknown as CpuBackendLike;
    if (!util.arraysEqual(dy.shape, x.shape)) throw new Error(`${GELU_GRAD_KERNEL}: shapes [${dy.shape}] and [${x.shape}] differ`);
    const out = f32(size(x.shape));
    addon.geluGrad(f32Of(b, dy, GELU_GRAD_KERNEL), f32Of(b, x, GELU_GRAD_KERNEL), out);
    return b.makeTensorInfo(x.shape, 'float32', out);
  });

  return kernels;
}

/**
 * A linear layer y = x·w + b as one kernel each way: SsferLinear (inputs x [rows, in], w [in, out],
 * b [out]) returns y; SsferLinearGrad (inputs dy, x, w) returns [dx, dw, db]. And the per-row
 * cross-entropy of soft targets −Σ_c t·log softmax(z): SsferSoftmaxCrossEntropy (inputs logits,
 * targets [rows, classes]) returns [loss [rows], log softmax]; SsferSoftmaxCrossEntropyGrad
 * (inputs dy [rows], targets, logp) returns [dlogits, dtargets].
 */
export function linearKernels(addon: NativeAddon, pool: BufferPool): Map<string, KernelFunc> {
  const kernels = new Map<string, KernelFunc>();
  const f32 = (n: number) => pool.alloc('float32', n) as Float32Array;
  const check = (kernel: string, x: TensorInfo, w: TensorInfo): [number, number, number] => {
    if (x.shape.length !== 2 || w.shape.length !== 2 || x.shape[1] !== w.shape[0]) {
      throw new Error(`${kernel}: x [${x.shape}] and w [${w.shape}] do not make a product`);
    }
    return [x.shape[0]!, w.shape[0]!, w.shape[1]!];
  };
  kernels.set(LINEAR_KERNEL, (args) => {
    const { x, w, b: bias } = args.inputs as { x: TensorInfo; w: TensorInfo; b: TensorInfo };
    const be = args.backend as unknown as CpuBackendLike;
    const [rows, inDim, outDim] = check(LINEAR_KERNEL, x, w);
    if (size(bias.shape) !== outDim) throw new Error(`${LINEAR_KERNEL}: bias [${bias.shape}] does not fit ${outDim} outputs`);
    const y = pool.alloc('float32', rows * outDim, inDim === 0) as Float32Array;
    addon.matmul(
      f32Of(be, x, LINEAR_KERNEL),
      f32Of(be, w, LINEAR_KERNEL),
      y,
      1,
      rows,
      outDim,
      inDim,
      false,
      false,
      0,
      0,
      null,
      null,
      f32Of(be, bias, LINEAR_KERNEL),
      -1,
      0,
    );
    return be.makeTensorInfo([rows, outDim], 'float32', y);
  });
  kernels.set(LINEAR_GRAD_KERNEL, (args) => {
    const { dy, x, w } = args.inputs as { dy: TensorInfo; x: TensorInfo; w: TensorInfo };
    const be = args.backend as unknown as CpuBackendLike;
    const [rows, inDim, outDim] = check(LINEAR_GRAD_KERNEL, x, w);
    if (!util.arraysEqual(dy.shape, [rows, outDim])) throw new Error(`${LINEAR_GRAD_KERNEL}: dy [${dy.shape}] is not [${rows}, ${outDim}]`);
    const dx = f32(rows * inDim);
    const dw = f32(inDim * outDim);
    const db = f32(outDim);
    addon.linearGrad(f32Of(be, dy, LINEAR_GRAD_KERNEL), f32Of(be, x, LINEAR_GRAD_KERNEL), f32Of(be, w, LINEAR_GRAD_KERNEL), dx, dw, db, rows, inDim, outDim);
    return [be.makeTensorInfo([rows, inDim], 'float32', dx), be.makeTensorInfo(w.shape, 'float32', dw), be.makeTensorInfo([outDim], 'float32', db)];
  });
  kernels.set(CROSS_ENTROPY_KERNEL, (args) => {
    const { logits, targets } = args.inputs as { logits: TensorInfo; targets: TensorInfo };
    const be = args.backend as unknown as CpuBackendLike;
    if (logits.shape.length !== 2 || !util.arraysEqual(logits.shape, targets.shape)) {
      throw new Error(`${CROSS_ENTROPY_KERNEL}: logits [${logits.shape}] and targets [${targets.shape}] must be one [rows, classes] shape`);
    }
    const [rows, cols] = logits.shape as [number, number];
    const loss = f32(rows);
    const logp = f32(rows * cols);
    addon.softmaxCrossEntropy(f32Of(be, logits, CROSS_ENTROPY_KERNEL), f32Of(be, targets, CROSS_ENTROPY_KERNEL), loss, logp, rows, cols);
    return [be.makeTensorInfo([rows], 'float32', loss), be.makeTensorInfo(logits.shape, 'float32', logp)];
  });
  kernels.set(CROSS_ENTROPY_GRAD_KERNEL, (args) => {
    const { dy, targets, logp } = args.inputs as { dy: TensorInfo; targets: TensorInfo; logp: TensorInfo };
    const be = args.backend as unknown as CpuBackendLike;
    const [rows, cols] = logp.shape as [number, number];
    if (size(dy.shape) !== rows || !util.arraysEqual(targets.shape, logp.shape)) throw new Error(`${CROSS_ENTROPY_GRAD_KERNEL}: shapes do not fit`);
    const dz = f32(rows * cols);
    const dt = f32(rows * cols);
    addon.softmaxCrossEntropyGrad(
      f32Of(be, dy, CROSS_ENTROPY_GRAD_KERNEL),
      f32Of(be, targets, CROSS_ENTROPY_GRAD_KERNEL),
      f32Of(be, logp, CROSS_ENTROPY_GRAD_KERNEL),
      dz,
      dt,
      rows,
      cols,
    );
    return [be.makeTensorInfo(logp.shape, 'float32', dz), be.makeTensorInfo(logp.shape, 'float32', dt)];
  });
  return kernels;
}

/** The block's parameters, in the order the kernels take them (and return their gradients). */
export const VIT_BLOCK_PARAMS = ['ln1g', 'ln1b', 'qkvW', 'qkvB', 'projW', 'projB', 'ln2g', 'ln2b', 'fc1W', 'fc1B', 'fc2W', 'fc2B'] as const;

/**
 * The pre-norm ViT block (csrc/block.cc) as two kernels:
 *  - SsferVitBlock: inputs x [B·T, D] and VIT_BLOCK_PARAMS (weights [in, out]); attrs batch, heads,
 *    eps1, eps2, gelu ('erf' | 'tanh'). Returns [y, workspace], the workspace holding what the
 *    backward needs, x included (one float32 vector).
 *  - SsferVitBlockGrad: inputs dy, workspace and VIT_BLOCK_PARAMS; same attrs. Returns [dx, then
 *    the gradient of each parameter].
 */
export function blockKernels(addon: NativeAddon, pool: BufferPool): Map<string, KernelFunc> {
  const kernels = new Map<string, KernelFunc>();
  const f32 = (n: number) => pool.alloc('float32', n) as Float32Array;
  const dimsOf = (kernel: string, x: TensorInfo, params: TensorInfo[], attrs: NamedAttrMap): number[] => {
    const batch = Number(attrs.batch);
    const heads = Number(attrs.heads);
    if (x.shape.length !== 2) throw new Error(`${kernel}: x must be [batch·tokens, dim], got [${x.shape}]`);
    const [rows, dim] = x.shape as [number, number];
    if (!Number.isInteger(batch) || batch < 1 || rows % batch !== 0) throw new Error(`${kernel}: ${rows} rows do not split into batch ${batch}`);
    if (!Number.isInteger(heads) || heads < 1 || dim % heads !== 0) throw new Error(`${kernel}: dim ${dim} does not split into ${heads} heads`);
    const mlp = params[8]!.shape[1] ?? 0;
    const expected = [[dim], [dim], [dim, 3 * dim], [3 * dim], [dim, dim], [dim], [dim], [dim], [dim, mlp], [mlp], [mlp, dim], [dim]];
    params.forEach((p, i) => {
      if (!util.arraysEqual(p.shape, expected[i]!)) {
        throw new Error(`${kernel}: ${VIT_BLOCK_PARAMS[i]} is [${p.shape}], expected [${expected[i]}]`);
      }
    });
    return [batch, rows / batch, dim, heads, mlp];
  };
  const paramsOf = (inputs: KernelArgs['inputs']) =>
    VIT_BLOCK_PARAMS.map((n) => {
      const t = inputs[n] as TensorInfo | undefined;
      if (!t) throw new Error(`${VIT_BLOCK_KERNEL}: missing input ${n}`);
      return t;
    });

  kernels.set(VIT_BLOCK_KERNEL, (args) => {
    const b = args.backend as unknown as CpuBackendLike;
    const attrs = args.attrs as NamedAttrMap;
    const x = args.inputs.x as TensorInfo;
    const params = paramsOf(args.inputs);
    const dims = dimsOf(VIT_BLOCK_KERNEL, x, params, attrs);
    const y = f32(size(x.shape));
    const ws = f32(addon.vitBlockWorkspace(dims));
    addon.vitBlock(
      f32Of(b, x, VIT_BLOCK_KERNEL),
      params.map((p) => f32Of(b, p, VIT_BLOCK_KERNEL)),
      y,
      ws,
      dims,
      Number(attrs.eps1),
      Number(attrs.eps2),
      attrs.gelu === 'tanh',
    );
    return [b.makeTensorInfo(x.shape, 'float32', y), b.makeTensorInfo([ws.length], 'float32', ws)];
  });

  kernels.set(VIT_BLOCK_GRAD_KERNEL, (args) => {
    const b = args.backend as unknown as CpuBackendLike;
    const attrs = args.attrs as NamedAttrMap;
    const { dy, workspace } = args.inputs as { dy: TensorInfo; workspace: TensorInfo };
    const params = paramsOf(args.inputs);
    const dims = dimsOf(VIT_BLOCK_GRAD_KERNEL, dy, params, attrs);
    if (size(workspace.shape) !== addon.vitBlockWorkspace(dims)) throw new Error(`${VIT_BLOCK_GRAD_KERNEL}: the workspace is not this block's`);
    const shapes = [dy.shape, ...params.map((p) => p.shape)];
    const grads = shapes.map((s) => f32(size(s)));
    addon.vitBlockGrad(
      f32Of(b, dy, VIT_BLOCK_GRAD_KERNEL),
      f32Of(b, workspace, VIT_BLOCK_GRAD_KERNEL),
      params.map((p) => f32Of(b, p, VIT_BLOCK_GRAD_KERNEL)),
      grads,
      dims,
      attrs.gelu === 'tanh',
    );
    return grads.map((g, i) => b.makeTensorInfo(shapes[i]!, 'float32', g));
  });

  return kernels;
}
