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
  hardSigmoid,
  hardSwish,
  type BatchNorm,
  type Conv2d,
  type Dense,
  type ParamSink,
} from './layers.ts';
import type { Architecture, Run } from './model.ts';

/** One inverted-residual block: input, kernel, expanded and output channels, SE, activation, stride. */
type BlockSpec = readonly [number, number, number, number, boolean, 'RE' | 'HS', number];

/** torchvision's `_mobilenet_v3_conf` (Howard et al. 2019, Tables 1 and 2), width 1.0. */
export const MOBILENET_V3 = {
  large: {
    blocks: [
      [16, 3, 16, 16, false, 'RE', 1],
      [16, 3, 64, 24, false, 'RE', 2],
      [24, 3, 72, 24, false, 'RE', 1],
      [24, 5, 72, 40, true, 'RE', 2],
      [40, 5, 120, 40, true, 'RE', 1],
      [40, 5, 120, 40, true, 'RE', 1],
      [40, 3, 240, 80, false, 'HS', 2],
      [80, 3, 200, 80, false, 'HS', 1],
      [80, 3, 184, 80, false, 'HS', 1],
      [80, 3, 184, 80, false, 'HS', 1],
      [80, 3, 480, 112, true, 'HS', 1],
      [112, 3, 672, 112, true, 'HS', 1],
      [112, 5, 672, 160, true, 'HS', 2],
      [160, 5, 960, 160, true, 'HS', 1],
      [160, 5, 960, 160, true, 'HS', 1],
    ] as readonly BlockSpec[],
    lastChannel: 1280,
  },
  small: {
    blocks: [
      [16, 3, 16, 16, true, 'RE', 2],
      [16, 3, 72, 24, false, 'RE', 2],
      [24, 3, 88, 24, false, 'RE', 1],
      [24, 5, 96, 40, true, 'HS', 2],
      [40, 5, 240, 40, true, 'HS', 1],
      [40, 5, 240, 40, true, 'HS', 1],
      [40, 5, 120, 48, true, 'HS', 1],
      [48, 5, 144, 48, true, 'HS', 1],
      [48, 5, 288, 96, true, 'HS', 2],
      [96, 5, 576, 96, true, 'HS', 1],
      [96, 5, 576, 96, true, 'HS', 1],
    ] as readonly BlockSpec[],
    lastChannel: 1024,
  },
} as const;

export type MobileNetSize = keyof typeof MOBILENET_V3;

export interface MobileNetConfig {
  readonly size: MobileNetSize;
  readonly channels: number;
  readonly dropout: number;
}

/** torchvision's `_make_divisible`: the nearest multiple of 8, never more than 10 % below v. */
export function makeDivisible(v: number, divisor = 8): number {
  let out = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (out < 0.9 * v) out += divisor;
  return out;
}

interface ConvBnAct {
  readonly conv: Conv2d;
  readonly bn: BatchNorm;
  readonly act: 'RE' | 'HS' | null;
}

interface Block {
  readonly expand: ConvBnAct | null;
  readonly depthwise: ConvBnAct;
  readonly se: { fc1: Conv2d; fc2: Conv2d } | null;
  readonly project: ConvBnAct;
  readonly residual: boolean;
}

interface Params {
  readonly stem: ConvBnAct;
  readonly blocks: Block[];
  readonly last: ConvBnAct;
  readonly fc: Dense;
  readonly head: Dense;
}

// MobileNetV3's BatchNorm: eps 0.001, momentum 0.01 (torchvision).
const BN_EPS = 0.001;
const BN_MOMENTUM = 0.01;

function act<T extends tf.Tensor>(x: T, a: 'RE' | 'HS' | null): T {
  return a === 'RE' ? tf.relu(x) : a === 'HS' ? hardSwish(x) : x;
}

function applyCba(x: tf.Tensor4D, l: ConvBnAct, run: Run): tf.Tensor4D {
  return act(batchNorm(conv2d(x, l.conv), l.bn, run.training), l.act);
}

/**
 * MobileNetV3 with torchvision's layout and names (features.0 … features.16, the SE block's fc1 and
 * fc2 as 1×1 convolutions with bias, classifier.0, the last linear as head).
 */
export function mobilenetV3(c: MobileNetConfig): Architecture<Params> {
  const spec = MOBILENET_V3[c.size];
  if (!spec) throw new Error(`mobilenet-v3: size must be large or small, got ${c.size}`);
  const lastConv = 6 * spec.blocks[spec.blocks.length - 1]![3];
  return {
    kind: `mobilenet_v3_${c.size}`,
    featureDim: spec.lastChannel,
    build(sink: ParamSink, numClasses: number, seed: number): Params {
      const cba = (name: string, inC: number, outC: number, k: number, stride: number, a: 'RE' | 'HS' | null, depthwise = false): ConvBnAct => ({
        conv: addConv(sink, `${name}.0`, inC, outC, k, seed, { stride, depthwise }),
        bn: addBatchNorm(sink, `${name}.1`, outC, BN_EPS, BN_MOMENTUM),
        act: a,
      });
      const stem = cba('features.0', c.channels, 16, 3, 2, 'HS');
      const blocks = spec.blocks.map(([inC, k, exp, outC, useSe, a, stride], i) => {
        const name = `features.${i + 1}.block`;
        let j = 0;
        const expand = exp !== inC ? cba(`${name}.${j++}`, inC, exp, 1, 1, a) : null;
        const depthwise = cba(`${name}.${j++}`, exp, exp, k, stride, a, true);
        const squeeze = makeDivisible(Math.floor(exp / 4));
        const se = useSe
          ? {
              fc1: addConv(sink, `${name}.${j}.fc1`, exp, squeeze, 1, seed, { bias: true }),
              fc2: addConv(sink, `${name}.${j++}.fc2`, squeeze, exp, 1, seed, { bias: true }),
            }
          : null;
        const project = cba(`${name}.${j}`, exp, outC, 1, 1, null);
        return { expand, depthwise, se, project, residual: stride === 1 && inC === outC };
      });
      const lastIn = spec.blocks[spec.blocks.length - 1]![3];
      const last = cba(`features.${spec.blocks.length + 1}`, lastIn, lastConv, 1, 1, 'HS');
      const init = { kind: 'normal', std: 0.01 } as const;
      return {
        stem,
        blocks,
        last,
        fc: addDense(sink, 'classifier.0', lastConv, spec.lastChannel, seed, init),
        head: addDense(sink, 'head', spec.lastChannel, numClasses, seed, init),
      };
    },
    features(p: Params, x: tf.Tensor4D, run: Run): tf.Tensor2D {
      let h = applyCba(x, p.stem, run);
      for (const b of p.blocks) {
        let y = b.expand ? applyCba(h, b.expand, run) : h;
        y = applyCba(y, b.depthwise, run);
        if (b.se) {
          // Squeeze-and-excitation: channel weights from the pooled map.
          const pooled = tf.mean(y, [1, 2], true) as tf.Tensor4D;
          const scale = hardSigmoid(conv2d(tf.relu(conv2d(pooled, b.se.fc1)), b.se.fc2));
          y = tf.mul(y, scale);
        }
        y = applyCba(y, b.project, run);
        h = b.residual ? tf.add(h, y) : y;
      }
      const pooled = globalAvgPool(applyCba(h, p.last, run));
      return hardSwish(dense(pooled, p.fc));
    },
    classify(p: Params, f: tf.Tensor2D, run: Run): tf.Tensor2D {
      return dense(dropout(f, c.dropout, run), p.head);
    },
  };
}
