import * as tf from '@tensorflow/tfjs';
import { addDense, batchNorm, dense, type Dense, type ParamSink } from './layers.ts';
import type { Architecture, Run } from './model.ts';
import { ones, zeros } from '../vit/init.ts';
import type { BatchNorm } from './layers.ts';

/**
 * How the flattened pixels are standardised before the linear map:
 * 'pixel' — each pixel and channel by its mean and std over the training images (scikit-learn's
 *   StandardScaler; estimated as running statistics while training, batch statistics in a step);
 * 'image' — each image by its own mean and std;
 * 'none' — as they come (after the input_mean / input_std normalisation).
 */
export type Standardise = 'pixel' | 'image' | 'none';

export interface LinearConfig {
  readonly imageSize: number;
  readonly channels: number;
  readonly standardise: Standardise;
}

interface Params {
  readonly scaler: BatchNorm | null;
  readonly head: Dense;
}

/** Multinomial logistic regression on pixels: the features are the standardised pixels themselves. */
export function linearProbe(c: LinearConfig): Architecture<Params> {
  const dim = c.imageSize * c.imageSize * c.channels;
  return {
    kind: 'linear',
    featureDim: dim,
    build(sink: ParamSink, numClasses: number, seed: number): Params {
      // A BatchNorm without a trained scale and shift: its running statistics are the scaler's.
      const scaler: BatchNorm | null =
        c.standardise === 'pixel'
          ? {
              weight: sink.add('scaler.weight', [dim], () => ones(dim), { buffer: true }),
              bias: sink.add('scaler.bias', [dim], () => zeros(dim), { buffer: true }),
              runningMean: sink.add('scaler.running_mean', [dim], () => zeros(dim), { buffer: true }),
              runningVar: sink.add('scaler.running_var', [dim], () => ones(dim), { buffer: true }),
              eps: 1e-5,
              momentum: 0.1,
            }
          : null;
      // The loss is convex: start from zero, as scikit-learn's solvers do.
      return { scaler, head: addDense(sink, 'head', dim, numClasses, seed, { kind: 'zeros' }) };
    },
    features(p: Params, x: tf.Tensor4D, run: Run): tf.Tensor2D {
      const flat = tf.reshape(x, [x.shape[0], dim]) as tf.Tensor2D;
      if (c.standardise === 'pixel') return batchNorm(flat, p.scaler!, run.training);
      if (c.standardise === 'image') {
        const { mean, variance } = tf.moments(flat, 1, true);
        return tf.div(tf.sub(flat, mean), tf.sqrt(tf.add(variance, 1e-5))) as tf.Tensor2D;
      }
      return flat;
    },
    classify(p: Params, f: tf.Tensor2D): tf.Tensor2D {
      return dense(f, p.head);
    },
  };
}
