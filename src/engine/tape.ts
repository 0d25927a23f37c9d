import * as tf from '@tensorflow/tfjs';

/**
 * Runs `fn` without recording its ops on the gradient tape, for values that are data to every
 * gradient (mixed images and their targets, κ of a pair of faces): what it returns is a constant
 * to tf.grads and optimizer.minimize, as a tensor computed before them would be, and a gradient
 * never flows through it. Recorded, every op would keep clones of its inputs (a kernel call
 * each) for a backward pass that never reaches them, and the backward would walk past them.
 *
 * The tape is paused the way tfjs pauses it inside a kernel: its engine records an op only at
 * kernel depth 0. An engine without that counter records as usual (slower, the same numbers).
 */
export function withoutTape<T>(fn: () => T): T {
  const state = (tf.engine() as unknown as { state?: { kernelDepth?: unknown } }).state;
  if (!state || typeof state.kernelDepth !== 'number') return fn();
  state.kernelDepth += 1;
  try {
    return fn();
  } finally {
    state.kernelDepth -= 1;
  }
}
