import * as tf from '@tensorflow/tfjs';
import { useFusedKernels } from '../../../src/engine/fused.ts';
import type { Backbone } from '../../../src/contracts/backbone.ts';
import { GELU_KERNEL, LAYER_NORM_KERNEL } from '../../../src/core/kernel-names.ts';

/**
 * Parameters and forward FLOPs of a backbone, counted from the model itself: its variables, and
 * the kernels one forward pass of one image runs.
 *
 * One multiply-add is one FLOP. Two totals:
 * - `flops` (torchvision's and fvcore's convention for the CNNs): only products with weights —
 *   convolutions (out · k² · in, depthwise out · k²) and matrix products with a weight matrix
 *   (linear layers, the patch embedding, the classifier);
 * - `layerFlops` (ptflops's, which the authors' code uses for Table 6: utils/tools.py calls
 *   get_model_complexity_info at 3×224×224): `flops` plus one per output element of every
 *   elementwise operation with a weight (a bias, a norm's scale and shift: LayerNorm and BatchNorm
 *   cost 2 per element) and of every activation function (ReLU, ReLU6, GELU's erf, tanh).
 * Neither counts pooling, residual additions, softmax or the products of two activations
 * (attention's q·kᵀ and softmax·v), which are reported apart as `attentionFlops` (fvcore adds
 * them to its total; ptflops does not see them in timm's ViT).
 *
 * Which operand is a weight is found by following the data: every tensor computed from the input
 * image is an activation, every other tensor computed from the model's variables is a weight, and
 * a product of an activation with a constant alone (an averaging matrix) is neither.
 */
export interface Complexity {
  /** Trained weights (BatchNorm statistics and fixed position embeddings excluded). */
  readonly parameters: number;
  /** Fixed buffers (BatchNorm running statistics). */
  readonly buffers: number;
  /** Multiply-adds of the layers with weights, per image. */
  readonly flops: number;
  /** `flops` plus the elementwise work of biases, norms and activations, per image. */
  readonly layerFlops: number;
  /** Multiply-adds of products between two activations (attention), per image. */
  readonly attentionFlops: number;
  /** Per kernel name, the multiply-adds counted in `flops`. */
  readonly byKernel: Readonly<Record<string, number>>;
  readonly imageSize: number;
}

type Origin = 'input' | 'weight';

const MATMUL = new Set(['BatchMatMul', '_FusedMatMul']);
const CONV = new Set(['Conv2D', 'FusedConv2D']);
const DEPTHWISE = new Set(['DepthwiseConv2dNative', 'FusedDepthwiseConv2D']);

/** Elementwise kernels that cost one FLOP per output element for each weight operand. */
const ELEMENTWISE = new Set(['Add', 'AddV2', 'Sub', 'Multiply', 'RealDiv', LAYER_NORM_KERNEL]);
/** Activation functions: one FLOP per output element. */
const ACTIVATIONS = new Set(['Relu', 'Relu6', 'Elu', 'LeakyRelu', 'Prelu', 'Erf', 'Tanh', 'Sigmoid', GELU_KERNEL]);

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Multiply-adds of one product kernel call, from its inputs, attributes and output shape. */
function macs(kernel: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>, out: readonly number[]): number {
  if (MATMUL.has(kernel)) {
    const a = inputs.a!.shape;
    const inner = attrs.transposeA ? a[a.length - 2]! : a[a.length - 1]!;
    return size(out) * inner;
  }
  const f = inputs.filter!.shape; // [kh, kw, in, out] or depthwise [kh, kw, in, multiplier]
  if (CONV.has(kernel)) return size(out) * f[0]! * f[1]! * f[2]!;
  return size(out) * f[0]! * f[1]!;
}

type RunKernel = (name: string, inputs: Record<string, tf.Tensor>, attrs?: Record<string, unknown>) => tf.Tensor | tf.Tensor[];

/**
 * Runs `model` on one image in evaluation mode and counts as described above. The engine's
 * runKernel is wrapped for the pass (tf.profile records neither the attributes nor which tensor
 * is which) and restored after it.
 */
export function countComplexity(model: Backbone): Complexity {
  const weights = new Set(model.trainableVariables());
  const parameters = [...weights].reduce((n, v) => n + v.size, 0);
  const buffers = [...model.namedVariables().values()].filter((v) => !weights.has(v)).reduce((n, v) => n + v.size, 0);
  const origin = new Map<number, Origin>();
  for (const v of model.namedVariables().values()) origin.set(v.id, 'weight');
  let flops = 0;
  let elementwise = 0;
  let attentionFlops = 0;
  const byKernel: Record<string, number> = {};
  const engine = tf.engine() as unknown as { runKernel: RunKernel };
  const original = engine.runKernel;
  engine.runKernel = function (this: unknown, name, inputs, attrs = {}) {
    const result = original.call(this, name, inputs, attrs);
    const kinds = Object.values(inputs).map((t) => (t ? origin.get(t.id) : undefined));
    // Constants (ε, an averaging matrix) leave a weight a weight.
    const from: Origin | undefined = kinds.includes('input') ? 'input' : kinds.includes('weight') ? 'weight' : undefined;
    const outs = Array.isArray(result) ? result : [result];
    if (from) for (const t of outs) origin.set(t.id, from);
    if (MATMUL.has(name) || CONV.has(name) || DEPTHWISE.has(name)) {
      const a = MATMUL.has(name) ? [origin.get(inputs.a!.id), origin.get(inputs.b!.id)] : [origin.get(inputs.x!.id), origin.get(inputs.filter!.id)];
      const n = macs(name, inputs, attrs, outs[0]!.shape);
      if (a[0] === 'input' && a[1] === 'input') attentionFlops += n;
      else if (a.includes('input') && a.includes('weight')) {
        flops += n;
        byKernel[name] = (byKernel[name] ?? 0) + n;
      }
    } else if (from === 'input' && ELEMENTWISE.has(name)) {
      elementwise += size(outs[0]!.shape) * kinds.filter((k) => k === 'weight').length;
    } else if (from === 'input' && ACTIVATIONS.has(name)) {
      elementwise += size(outs[0]!.shape);
    }
    return result;
  };
  // The fused layers (one kernel for a whole ViT block on native) hide the products counted here.
  const fused = useFusedKernels(false);
  try {
    tf.tidy(() => {
      const image = tf.fill([1, model.imageSize, model.imageSize, model.channels], 0.5) as tf.Tensor4D;
      origin.set(image.id, 'input');
      model.logits(image, { training: false }).dataSync();
    });
  } finally {
    engine.runKernel = original;
    useFusedKernels(fused);
  }
  return { parameters, buffers, flops, layerFlops: flops + elementwise, attentionFlops, byKernel, imageSize: model.imageSize };
}
