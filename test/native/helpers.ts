import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../../src/core/rng.ts';
import { registerNativeBackend } from '../../src/native/index.ts';

/**
 * For a suite's `before`: registers the native backend or skips the suite with the reason (the
 * addon is not built); returns the backend that was active, for the suite's `after`.
 */
export function requireNative(suite: Mocha.Context): string {
  const previous = tf.getBackend();
  const reason = registerNativeBackend();
  if (reason) {
    console.log(`    skipped: ${reason}`);
    suite.skip();
  }
  tf.enableProdMode();
  return previous;
}

/**
 * A suite on the native backend: registers it before the suite (or skips the suite with the
 * reason, when the addon is not built), selects it when `select`, and restores the backend that
 * was active after the suite.
 */
export function onNative(options: { select?: boolean } = {}): void {
  let previous = '';
  before(async function () {
    previous = requireNative(this);
    if (options.select) await tf.setBackend('native');
  });
  after(async () => {
    if (previous) await tf.setBackend(previous);
  });
}

/** Values uniform in [−scale, scale) for a tensor of `shape`, drawn from `seed`. */
export function randomOfShape(shape: number[], seed: number, scale: number): Float32Array {
  const rand = mulberry32(seed);
  const v = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < v.length; i++) v[i] = (rand() * 2 - 1) * scale;
  return v;
}
