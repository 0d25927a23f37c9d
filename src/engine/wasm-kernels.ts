import * as tf from '@tensorflow/tfjs';
import type { KernelBackend, KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';

/**
 * Gradient kernels the wasm backend does not register, without which a CNN cannot train there:
 *  - Conv2DBackpropFilter as a convolution the backend has (XNNPACK): the filter gradient
 *    dW[kh, kw, c, f] = Σ_{n, oh, ow} x[n, oh·s + kh − pad, ow·s + kw − pad, c] · dy[n, oh, ow, f]
 *    is the valid convolution of the padded input with channels and batch swapped ([C, H, W, N])
 *    by dy as a filter ([OH, OW, N, F]) at dilation s, cropped to the filter's size;
 *  - the depthwise gradients, direct loops over the values;
 *  - UnsortedSegmentSum, which tf.gather's gradient needs (a loss of gathered rows, as FaceMix's
 *    partner losses, would not train without it), a loop over the rows.
 * Registered once the wasm backend has loaded (src/engine/backend.ts).
 */

interface WasmBackend extends KernelBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
  disposeData(dataId: object): boolean;
}

type Geometry = ReturnType<typeof tf.backend_util.computeConv2DInfo>;

/** Runs another wasm kernel on backend-level tensors. */
function run(name: string, backend: WasmBackend, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown> = {}): TensorInfo {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm backend: no ${name} kernel`);
  return k.kernelFunc({ inputs, backend, attrs: attrs as NamedAttrMap }) as TensorInfo;
}

function geometry(inShape: number[], filterShape: number[], attrs: NamedAttrMap, depthwise: boolean): Geometry {
  return tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as [number, number],
    (attrs.dilations ?? 1) as [number, number],
    attrs.pad as 'valid',
    attrs.dimRoundingMode as 'floor' | undefined,
    depthwise,
    'channelsLast',
  );
}

function channelsLast(attrs: NamedAttrMap): boolean {
  return attrs.dataFormat === undefined || attrs.dataFormat === 'NHWC' || attrs.dataFormat === 'channelsLast';
}

const conv2DBackpropFilter: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const b = backend as unknown as WasmBackend;
    const a = attrs as NamedAttrMap;
    if (!channelsLast(a)) throw new Error('Conv2DBackpropFilter on wasm: only NHWC is supported');
    const filterShape = a.filterShape as [number, number, number, number];
    const g = geometry(x.shape, filterShape, { ...a, dilations: 1 }, false);
    const { top, bottom, left, right } = g.padInfo;
    const temps: TensorInfo[] = [];
    const keep = (t: TensorInfo) => (temps.push(t), t);
    try {
      const padded =
        top || bottom || left || right
          ? keep(
              run(
                'PadV2',
                b,
                { x },
                {
                  paddings: [
                    [0, 0],
                    [top, bottom],
                    [left, right],
                    [0, 0],
                  ],
                  constantValue: 0,
                },
              ),
            )
          : x;
      const xt = keep(run('Transpose', b, { x: padded }, { perm: [3, 1, 2, 0] }));
      const ft = keep(run('Transpose', b, { x: dy }, { perm: [1, 2, 0, 3] }));
      const r = keep(
        run(
          'Conv2D',
          b,
          { x: xt, filter: ft },
          {
            strides: [1, 1],
            pad: 'valid',
            dataFormat: 'NHWC',
            dilations: [g.strideHeight, g.strideWidth],
            dimRoundingMode: undefined,
          },
        ),
      );
      const [kh, kw, c, f] = filterShape;
      const cropped = r.shape[1] === kh && r.shape[2] === kw ? r : keep(run('Slice', b, { x: r }, { begin: [0, 0, 0, 0], size: [c, kh, kw, f] }));
      return run('Transpose', b, { x: cropped }, { perm: [1, 2, 0, 3] });
    } finally {
      for (const t of temps) b.disposeData(t.dataId);
    }
  },
};

/** Index of x or dx at (n, ih, iw, c) and of y or dy at (n, oh, ow, c·M + q), NHWC. */
function depthwiseLoop(g: Geometry, visit: (xi: number, yi: number, fi: number) => void): void {
  const M = g.outChannels / g.inChannels;
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = g;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const yRow = ((n * OH + oh) * OW + ow) * C * M;
        for (let kh = 0; kh < g.filterHeight; kh++) {
          const ih = oh * g.strideHeight + kh * g.dilationHeight - g.padInfo.top;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < g.filterWidth; kw++) {
            const iw = ow * g.strideWidth + kw * g.dilationWidth - g.padInfo.left;
            if (iw < 0 || iw >= W) continue;
            const xRow = ((n * H + ih) * W + iw) * C;
            const fRow = (kh * g.filterWidth + kw) * C * M;
            for (let c = 0; c < C; c++) {
              for (let q = 0; q < M; q++) visit(xRow + c, yRow + c * M + q, fRow + c * M + q);
            }
          }
        }
      }
    }
  }
}

const depthwiseBackpropInput: KernelConfig = {
  kernelName: 'DepthwiseConv2dNativeBackpropInput',
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const b = backend as unknown as WasmBackend;
    const a = attrs as NamedAttrMap;
    const inputShape = a.inputShape as number[];
    const g = geometry(inputShape, filter.shape, a, true);
    const dyv = b.readSync(dy.dataId) as Float32Array;
    const fv = b.readSync(filter.dataId) as Float32Array;
    const dx = new Float32Array(inputShape.reduce((p, d) => p * d, 1));
    depthwiseLoop(g, (xi, yi, fi) => {
      dx[xi] += dyv[yi]! * fv[fi]!;
    });
    const out = b.makeOutput(inputShape, 'float32');
    b.typedArrayFromHeap(out).set(dx);
    return out;
  },
};

const depthwiseBackpropFilter: KernelConfig = {
  kernelName: 'DepthwiseConv2dNativeBackpropFilter',
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const b = backend as unknown as WasmBackend;
    const a = attrs as NamedAttrMap;
    const filterShape = a.filterShape as number[];
    const g = geometry(x.shape, filterShape, a, true);
    const xv = b.readSync(x.dataId) as Float32Array;
    const dyv = b.readSync(dy.dataId) as Float32Array;
    const df = new Float64Array(filterShape.reduce((p, d) => p * d, 1));
    depthwiseLoop(g, (xi, yi, fi) => {
      df[fi] += xv[xi]! * dyv[yi]!;
    });
    const out = b.makeOutput(filterShape, 'float32');
    b.typedArrayFromHeap(out).set(df);
    return out;
  },
};

const unsortedSegmentSum: KernelConfig = {
  kernelName: 'UnsortedSegmentSum',
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
    const b = backend as unknown as WasmBackend;
    const numSegments = (attrs as NamedAttrMap).numSegments as number;
    if (x.dtype !== 'float32') throw new Error(`UnsortedSegmentSum on wasm: only float32 is supported, got ${x.dtype}`);
    const xv = b.typedArrayFromHeap(x);
    const ids = b.typedArrayFromHeap(segmentIds) as unknown as Int32Array;
    const row = x.shape.slice(1).reduce((n, d) => n * d, 1);
    const sums = new Float32Array(numSegments * row);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      // As TensorFlow: ids outside [0, numSegments) are dropped.
      if (id < 0 || id >= numSegments) continue;
      for (let j = 0; j < row; j++) sums[id * row + j]! += xv[i * row + j]!;
    }
    const out = b.makeOutput([numSegments, ...x.shape.slice(1)], 'float32');
    b.typedArrayFromHeap(out).set(sums);
    return out;
  },
};

/** Registers the kernels above for 'wasm' where it has none of its own (a no-op before it exists). */
export function registerWasmKernels(): void {
  if (!tf.findBackendFactory('wasm')) return;
  for (const k of [conv2DBackpropFilter, depthwiseBackpropInput, depthwiseBackpropFilter, unsortedSegmentSum]) {
    if (!tf.getKernel(k.kernelName, 'wasm')) tf.registerKernel(k);
  }
}
