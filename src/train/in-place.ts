import * as tf from '@tensorflow/tfjs';
import type { NamedAttrMap } from '@tensorflow/tfjs';
import { hasOwnKernel } from '../engine/backend.ts';

/**
 * Runs a kernel that updates weights in place where nothing else sees them (the native backend's
 * SsferAdamWInPlace and SsferEmaInPlace). Null where the backend has no such kernel; else 1 for
 * each weight the kernel updated and 0 for those the caller must update itself.
 */
export function runInPlace(kernel: string, inputs: tf.NamedTensorMap, attrs: NamedAttrMap): Int32Array | null {
  if (!hasOwnKernel(kernel)) return null;
  const done = tf.engine().runKernel(kernel, inputs, attrs) as tf.Tensor;
  const mask = done.dataSync() as Int32Array;
  done.dispose();
  return mask;
}
