import * as tf from '@tensorflow/tfjs';
import {
  CROSS_ENTROPY_GRAD_KERNEL,
  CROSS_ENTROPY_KERNEL,
  LINEAR_GRAD_KERNEL,
  LINEAR_KERNEL,
  VIT_BLOCK_GRAD_KERNEL,
  VIT_BLOCK_KERNEL,
} from '../core/kernel-names.ts';

/**
 * Whole layers as single kernels, where the active backend registers them (today the 'native'
 * backend, src/native/csrc/block.cc). Each function returns null where the backend has no such
 * kernel, and the caller then runs its op-by-op path: the fused kernels compute the same function
 * and its gradient (tested against the op-by-op path on the cpu backend), with fewer dispatches
 * and no intermediate tensors.
 */

/** The parameters of a pre-norm ViT block; weights are [in, out]. */
export interface FusedBlockParams {
  readonly norm1: { readonly weight: tf.Tensor; readonly bias: tf.Tensor; readonly eps: number };
  readonly qkv: { readonly weight: tf.Tensor; readonly bias: tf.Tensor | null };
  readonly proj: { readonly weight: tf.Tensor; readonly bias: tf.Tensor | null };
  readonly norm2: { readonly weight: tf.Tensor; readonly bias: tf.Tensor; readonly eps: number };
  readonly fc1: { readonly weight: tf.Tensor; readonly bias: tf.Tensor | null };
  readonly fc2: { readonly weight: tf.Tensor; readonly bias: tf.Tensor | null };
}

let enabled = true;
const registered = new Map<string, boolean>();

/** Turns the fused layers off or on (to compare both paths); returns the previous setting. */
export function useFusedKernels(on: boolean): boolean {
  const previous = enabled;
  enabled = on;
  return previous;
}

function hasKernels(...names: string[]): boolean {
  if (!enabled) return false;
  const backend = tf.getBackend();
  const key = `${backend}:${names.join(',')}`;
  let ok = registered.get(key);
  if (ok === undefined) {
    ok = names.every((k) => tf.getKernel(k, backend) !== undefined);
    registered.set(key, ok);
  }
  return ok;
}

type CustomArgs = (tf.Tensor | tf.GradSaveFunc)[];

const linearOp = tf.customGrad((...args: CustomArgs) => {
  const [x, w, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  // As in the block: a weight that is a variable is read again by the backward, not saved.
  const saveW = !(w instanceof tf.Variable);
  save(saveW ? [x, w] : [x]);
  return {
    value: tf.engine().runKernel(LINEAR_KERNEL, { x, w, b }, {}) as tf.Tensor2D,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.engine().runKernel(LINEAR_GRAD_KERNEL, { dy, x: saved[0]!, w: saveW ? saved[1]! : w }, {}) as tf.Tensor[],
  };
});

/** x·w + b for x [rows, in], w [in, out], b [out], as one kernel and one for its gradients; null where the backend has none. */
export function fusedLinear(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D | null {
  if (x.dtype !== 'float32' || x.rank !== 2 || w.rank !== 2 || !hasKernels(LINEAR_KERNEL, LINEAR_GRAD_KERNEL)) return null;
  return linearOp(x, w, b) as tf.Tensor2D;
}

const crossEntropyOp = tf.customGrad((...args: CustomArgs) => {
  const [logits, targets, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  const [loss, logp] = tf.engine().runKernel(CROSS_ENTROPY_KERNEL, { logits, targets }, {}) as tf.Tensor[];
  save([targets, logp!]);
  return {
    value: loss!,
    gradFunc: (dy: tf.Tensor, [t, lp]: tf.Tensor[]) => tf.engine().runKernel(CROSS_ENTROPY_GRAD_KERNEL, { dy, targets: t!, logp: lp! }, {}) as tf.Tensor[],
  };
});

/**
 * Per-row −Σ_c targets·log softmax(logits), [rows, classes] → [rows], with log-softmax taken
 * after subtracting the row maximum, as one kernel and one for both gradients; null where the
 * backend has none.
 */
export function fusedSoftmaxCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Tensor1D | null {
  if (logits.dtype !== 'float32' || targets.dtype !== 'float32' || logits.rank !== 2 || !hasKernels(CROSS_ENTROPY_KERNEL, CROSS_ENTROPY_GRAD_KERNEL))
    return null;
  return crossEntropyOp(logits, targets) as tf.Tensor1D;
}

const blockOps = new Map<string, (...args: tf.Tensor[]) => tf.Tensor>();

function blockOp(batch: number, heads: number, eps1: number, eps2: number, gelu: 'erf' | 'tanh'): (...args: tf.Tensor[]) => tf.Tensor {
  const key = `${batch}/${heads}/${eps1}/${eps2}/${gelu}`;
  let op = blockOps.get(key);
  if (op) return op;
  const attrs = { batch, heads, eps1, eps2, gelu };
  const names = ['ln1g', 'ln1b', 'qkvW', 'qkvB', 'projW', 'projB', 'ln2g', 'ln2b', 'fc1W', 'fc1B', 'fc2W', 'fc2B'];
  op = tf.customGrad((...args: CustomArgs) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [x, ...params] = args as tf.Tensor[];
    const inputs: tf.NamedTensorMap = { x: x! };
    names.forEach((n, i) => (inputs[n] = params[i]!));
    const [y, workspace] = tf.engine().runKernel(VIT_BLOCK_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    // Saving a tensor clones it (a kernel call each): the workspace holds x, and weights that are
    // variables stay as they are until the backward has run (an optimizer steps after it).
    const saveParam = params.map((p) => !(p instanceof tf.Variable));
    save([workspace!, ...params.filter((_, i) => saveParam[i])]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [ws, ...rest] = saved;
        const gradInputs: tf.NamedTensorMap = { dy, workspace: ws! };
        let k = 0;
        names.forEach((n, i) => (gradInputs[n] = saveParam[i] ? rest[k++]! : params[i]!));
        return tf.engine().runKernel(VIT_BLOCK_GRAD_KERNEL, gradInputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
      },
    };
  }) as (...args: tf.Tensor[]) => tf.Tensor;
  blockOps.set(key, op);
  return op;
}

/**
 * x + attn(LN1(x)) then h + MLP(LN2(h)) on x [batch·tokens, dim], as one kernel and its gradient;
 * null where the backend has no fused block or the block has no biases (the kernel takes them).
 * Dropout and stochastic depth are not part of it: call it only when they are off.
 */
export function fusedVitBlock(x: tf.Tensor2D, p: FusedBlockParams, batch: number, heads: number, gelu: 'erf' | 'tanh'): tf.Tensor2D | null {
  if (x.dtype !== 'float32' || !hasKernels(VIT_BLOCK_KERNEL, VIT_BLOCK_GRAD_KERNEL)) return null;
  const { qkv, proj, fc1, fc2 } = p;
  if (!qkv.bias || !proj.bias || !fc1.bias || !fc2.bias) return null;
  const op = blockOp(batch, heads, p.norm1.eps, p.norm2.eps, gelu);
  return op(
    x,
    p.norm1.weight,
    p.norm1.bias,
    qkv.weight,
    qkv.bias,
    proj.weight,
    proj.bias,
    p.norm2.weight,
    p.norm2.bias,
    fc1.weight,
    fc1.bias,
    fc2.weight,
    fc2.bias,
  ) as tf.Tensor2D;
}
