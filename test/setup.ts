// Root hooks for every test file. Tests run tfjs as `ssfer run` does: in production mode, which
// also silences its one-time advice to install tfjs-node.
import * as tf from '@tensorflow/tfjs';

tf.enableProdMode();

// Every epoch is saved in the tests (and in the runs they start), so that a test can stop a stage
// after any epoch and resume it; runs save at most every 30 s by default.
process.env.SSFER_CHECKPOINT_SECONDS ??= '0';

export const mochaHooks = {};
