import * as tf from '@tensorflow/tfjs';
import { dropout } from '../vit/layers.ts';
import {
  addBatchNorm,
  addConv,
  addDense,
  batchNorm,
  conv2d,
  dense,
  globalAvgPool,
  maxPool,
  type BatchNorm,
  type Conv2d,
  type Dense,
  type ParamSink,
} from './layers.ts';
import type { Architecture, Run } from './model.ts';

export interface SmallCnnConfig {
  readonly channels: number;
  /** Output channels of each block's convolutions. */
  readonly widths: readonly number[];
  readonly convsPerBlock: number;
  readonly kernel: number;
  readonly dropout: number;
}

interface Params {
  readonly blocks: { conv: Conv2d; bn: BatchNorm }[][];
  readonly head: Dense;
}

/**
 * A plain CNN baseline: blocks of (k×k convolution → BatchNorm → ReLU) × n followed by a 2×2 max
 * pool, then a global average pool, dropout and a linear classifier.
 */
export function smallCnn(c: SmallCnnConfig): Architecture<Params> {
  return {
    kind: 'small-cnn',
    featureDim: c.widths[c.widths.length - 1]!,
    build(sink: ParamSink, numClasses: number, seed: number): Params {
      let inC = c.channels;
      const blocks = c.widths.map((width, b) =>
        Array.from({ length: c.convsPerBlock }, (_, i) => {
          const name = `blocks.${b}.${i}`;
          const layer = { conv: addConv(sink, `${name}.conv`, inC, width, c.kernel, seed), bn: addBatchNorm(sink, `${name}.bn`, width) };
          inC = width;
          return layer;
        }),
      );
      return { blocks, head: addDense(sink, 'head', inC, numClasses, seed) };
    },
    features(p: Params, x: tf.Tensor4D, run: Run): tf.Tensor2D {
      let h = x;
      for (const block of p.blocks) {
        for (const { conv, bn } of block) h = tf.relu(batchNorm(conv2d(h, conv), bn, run.training));
        h = maxPool(h, 2, 2);
      }
      return globalAvgPool(h);
    },
    classify(p: Params, f: tf.Tensor2D, run: Run): tf.Tensor2D {
      return dense(dropout(f, c.dropout, run), p.head);
    },
  };
}
