import * as tf from '@tensorflow/tfjs';

/** Copies the images at `indices` out of an NHWC array into a batch tensor. */
export function gatherImages(images: Float32Array, indices: ArrayLike<number>, size: number, channels = 3): tf.Tensor4D {
  const per = size * size * channels;
  const out = new Float32Array(indices.length * per);
  for (let i = 0; i < indices.length; i++) out.set(images.subarray(indices[i]! * per, (indices[i]! + 1) * per), i * per);
  return tf.tensor4d(out, [indices.length, size, size, channels]);
}

export function gatherLabels(labels: Int32Array, indices: ArrayLike<number>): tf.Tensor1D {
  const out = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) out[i] = labels[indices[i]!]!;
  return tf.tensor1d(out, 'int32');
}

export function gatherBoxes(boxes: Float32Array, indices: ArrayLike<number>): tf.Tensor2D {
  const out = new Float32Array(indices.length * 4);
  for (let i = 0; i < indices.length; i++) out.set(boxes.subarray(indices[i]! * 4, indices[i]! * 4 + 4), i * 4);
  return tf.tensor2d(out, [indices.length, 4]);
}

/** Batches of an epoch: the pool shuffled by `shuffle`, cut into full batches (a short last batch is kept when it is the only one). */
export function epochBatches(pool: Int32Array, batchSize: number, shuffle: (a: Int32Array) => void): Int32Array[] {
  const order = Int32Array.from(pool);
  shuffle(order);
  const size = Math.min(batchSize, order.length);
  const batches: Int32Array[] = [];
  for (let s = 0; s + size <= order.length; s += size) batches.push(order.subarray(s, s + size));
  return batches;
}
