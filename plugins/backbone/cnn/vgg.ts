import * as tf from '@tensorflow/tfjs';
import { dropout } from '../vit/layers.ts';
import {
  adaptivePoolMatrix,
  addBatchNorm,
  addConv,
  addDense,
  batchNorm,
  conv2d,
  dense,
  maxPool,
  type BatchNorm,
  type Conv2d,
  type Dense,
  type ParamSink,
} from './layers.ts';
import type { Architecture, Run } from './model.ts';
import { matMul } from '../vit/layers.ts';

/** torchvision's configurations A, B, D, E: output channels, 'M' a 2×2 max pool. */
export const VGG_LAYERS = {
  11: [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  13: [64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  16: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
  19: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'],
} as const;

export type VggDepth = keyof typeof VGG_LAYERS;

export interface VggConfig {
  readonly depth: VggDepth;
  readonly batchNorm: boolean;
  readonly channels: number;
  readonly imageSize: number;
  readonly dropout: number;
  /** Side of the adaptive average pool before the classifier (torchvision: 7). */
  readonly poolSize?: number;
  /** Width of the classifier's two hidden layers (torchvision: 4096). */
  readonly hidden?: number;
}

interface Params {
  readonly features: ({ conv: Conv2d; bn: BatchNorm | null } | 'M')[];
  readonly fc1: Dense;
  readonly fc2: Dense;
  readonly head: Dense;
}

/**
 * VGG as torchvision builds it: 3×3 convolutions (with bias, then BatchNorm when asked) and
 * ReLU, 2×2 max pools, an adaptive average pool to 7×7, and the classifier Linear(25088, 4096) →
 * ReLU → Dropout → Linear(4096, 4096) → ReLU → Dropout → Linear(4096, classes). Weight names follow
 * torchvision's indices (features.0, features.1, …, classifier.0, classifier.3), the last linear is head.
 * The 7×7 pool makes the classifier's size independent of the image size; below 224 px it
 * repeats or averages the last feature map as PyTorch's AdaptiveAvgPool2d does. `poolSize` and
 * `hidden` change the 7 and the 4096 (a VGG small enough for a smoke run); the defaults are torchvision's.
 */
export function vgg(c: VggConfig): Architecture<Params> {
  const cfg = VGG_LAYERS[c.depth];
  if (!cfg) throw new Error(`vgg: depth must be one of ${Object.keys(VGG_LAYERS).join(', ')}, got ${c.depth}`);
  const pools = cfg.filter((v) => v === 'M').length;
  // The feature map after the pools (each floors an odd side).
  let side = c.imageSize;
  for (let i = 0; i < pools; i++) side = Math.floor(side / 2);
  if (side < 1) throw new Error(`vgg: image_size ${c.imageSize} is pooled below 1 px by ${pools} max pools; use at least ${2 ** pools} px`);
  const k = c.poolSize ?? 7;
  const hidden = c.hidden ?? 4096;
  const pool = adaptivePoolMatrix(side, side, k, k);
  return {
    kind: `vgg${c.depth}${c.batchNorm ? '_bn' : ''}`,
    featureDim: hidden,
    build(sink: ParamSink, numClasses: number, seed: number): Params {
      let inC = c.channels;
      let index = 0;
      const features = cfg.map((v) => {
        if (v === 'M') {
          index += 1;
          return 'M' as const;
        }
        const conv = addConv(sink, `features.${index}`, inC, v, 3, seed, { bias: true });
        const bn = c.batchNorm ? addBatchNorm(sink, `features.${index + 1}`, v) : null;
        index += c.batchNorm ? 3 : 2; // conv (, bn), relu
        inC = v;
        return { conv, bn };
      });
      const init = { kind: 'normal', std: 0.01 } as const;
      return {
        features,
        fc1: addDense(sink, 'classifier.0', 512 * k * k, hidden, seed, init),
        fc2: addDense(sink, 'classifier.3', hidden, hidden, seed, init),
        head: addDense(sink, 'head', hidden, numClasses, seed, init),
      };
    },
    features(p: Params, x: tf.Tensor4D, run: Run): tf.Tensor2D {
      let h = x;
      for (const l of p.features) {
        if (l === 'M') h = maxPool(h, 2, 2);
        else h = tf.relu(l.bn ? batchNorm(conv2d(h, l.conv), l.bn, run.training) : conv2d(h, l.conv));
      }
      const [b, hh, ww, ch] = h.shape;
      // [B·C, H·W] · [H·W, k²]: channel-major, as PyTorch flattens its NCHW pool output.
      const planes = tf.reshape(tf.transpose(h, [0, 3, 1, 2]), [b * ch, hh * ww]) as tf.Tensor2D;
      const flat = tf.reshape(matMul(planes, tf.tensor2d(pool, [k * k, hh * ww]), true), [b, ch * k * k]) as tf.Tensor2D;
      const h1 = dropout(tf.relu(dense(flat, p.fc1)), c.dropout, run);
      return dropout(tf.relu(dense(h1, p.fc2)), c.dropout, run);
    },
    classify(p: Params, f: tf.Tensor2D): tf.Tensor2D {
      return dense(f, p.head);
    },
  };
}
