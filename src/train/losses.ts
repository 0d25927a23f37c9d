import * as tf from '@tensorflow/tfjs';
import { fusedSoftmaxCrossEntropy } from '../engine/fused.ts';

/** Class indices [B] (int32 tensor or plain numbers). */
export type Labels = tf.Tensor1D | readonly number[] | Int32Array;

function labelTensor(labels: Labels): tf.Tensor1D {
  if (labels instanceof tf.Tensor) return labels.dtype === 'int32' ? labels : (tf.cast(labels, 'int32') as tf.Tensor1D);
  return tf.tensor1d(Array.from(labels), 'int32');
}

/**
 * Per-sample cross-entropy −Σ_c target_c · log softmax(logits)_c, [B, C] → [B], with label
 * smoothing ε: target = (1 − ε)·onehot + ε/C (timm's LabelSmoothingCrossEntropy, PyTorch's
 * label_smoothing). log-softmax subtracts the row maximum first, so large logits do not overflow.
 * `numClasses`, when given, must equal the logits' width (it catches a head of the wrong size).
 */
export function crossEntropy(logits: tf.Tensor2D, labels: Labels, numClasses?: number, smoothing = 0): tf.Tensor1D {
  const [b, c] = logits.shape;
  if (numClasses !== undefined && numClasses !== c) throw new Error(`crossEntropy: logits have ${c} classes, expected ${numClasses}`);
  const n = labels instanceof tf.Tensor ? labels.shape[0] : labels.length;
  if (n !== b) throw new Error(`crossEntropy: ${b} rows of logits but ${n} labels`);
  return tf.tidy(() => {
    const target = smoothedTargets(labels, c, smoothing);
    return fusedSoftmaxCrossEntropy(logits, target) ?? (tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)), -1)) as tf.Tensor1D);
  });
}

/** Per-sample −Σ_c target_c · log softmax(logits)_c for soft targets (Mixup / FaceMix), [B] . */
export function softTargetCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Tensor1D {
  if (logits.shape[0] !== targets.shape[0] || logits.shape[1] !== targets.shape[1]) {
    throw new Error(`softTargetCrossEntropy: logits [${logits.shape}] and targets [${targets.shape}] differ`);
  }
  return tf.tidy(() => fusedSoftmaxCrossEntropy(logits, targets) ?? (tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), -1)) as tf.Tensor1D));
}

/** (1 − ε)·onehot + ε/C, [B] → [B, C] float32 (also Mixup's targets before mixing). */
export function smoothedTargets(labels: Labels, numClasses: number, smoothing = 0): tf.Tensor2D {
  if (!(smoothing >= 0 && smoothing < 1)) throw new Error(`label smoothing must be in [0, 1), got ${smoothing}`);
  return tf.tidy(() => {
    const onehot = tf.oneHot(labelTensor(labels), numClasses) as tf.Tensor2D;
    return smoothing === 0 ? (tf.cast(onehot, 'float32') as tf.Tensor2D) : (tf.add(tf.mul(onehot, 1 - smoothing), smoothing / numClasses) as tf.Tensor2D);
  });
}

export type Reduction = 'mean' | 'sum' | 'none';

/** Reduces per-sample losses; 'mean' divides by the batch size. */
export function reduce(perSample: tf.Tensor1D, reduction: Reduction = 'mean'): tf.Tensor {
  if (reduction === 'none') return tf.clone(perSample);
  return reduction === 'sum' ? tf.sum(perSample) : tf.mean(perSample);
}

/**
 * Σ wᵢ·lossᵢ / denominator, the denominator being the batch size unless given. With a 0/1 mask
 * as weights this is the unlabeled loss (1/N_U)·Σ 1[max p > τ]·CE of the semi-supervised stage,
 * and with κ it is FaceMix's κ·(L_i + L_j) term.
 */
export function weightedMean(perSample: tf.Tensor1D, weights: tf.Tensor1D, denominator?: number): tf.Scalar {
  if (perSample.shape[0] !== weights.shape[0]) throw new Error(`weightedMean: ${perSample.shape[0]} losses but ${weights.shape[0]} weights`);
  const d = denominator ?? perSample.shape[0];
  return tf.tidy(() => tf.div(tf.sum(tf.mul(perSample, weights)), d) as tf.Scalar);
}
