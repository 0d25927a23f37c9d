// Root hooks for every test file. Tests run tfjs as `ssfer run` does: in production mode, which
// also silences its one-time advice to install tfjs-node.
import * as tf from '@tensorflow/tfjs';

tf.enableProdMode();

export const mochaHooks = {};
