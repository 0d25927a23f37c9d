import * as tf from '@tensorflow/tfjs';
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
