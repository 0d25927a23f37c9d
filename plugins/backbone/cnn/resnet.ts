import * as tf from '@tensorflow/tfjs';
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

/** torchvision's depths: BasicBlock for 18 and 34, Bottleneck (stride on the 3×3, "v1.5") from 50. */
export const RESNET_LAYERS = {
  18: { bottleneck: false, blocks: [2, 2, 2, 2] },
  34: { bottleneck: false, blocks: [3, 4, 6, 3] },
  50: { bottleneck: true, blocks: [3, 4, 6, 3] },
  101: { bottleneck: true, blocks: [3, 4, 23, 3] },
  152: { bottleneck: true, blocks: [3, 8, 36, 3] },
} as const;

export type ResNetDepth = keyof typeof RESNET_LAYERS;

export interface ResNetConfig {
  readonly depth: ResNetDepth;
  readonly channels: number;
  /** Start each residual branch's last BatchNorm at zero (torchvision's zero_init_residual). */
  readonly zeroInitResidual: boolean;
}

interface ConvBn {
  readonly conv: Conv2d;
  readonly bn: BatchNorm;
}

interface Block {
  readonly convs: ConvBn[];
  readonly downsample: ConvBn | null;
}

interface Params {
  readonly stem: ConvBn;
  readonly layers: Block[][];
  readonly head: Dense;
}

function convBn(sink: ParamSink, conv: string, bn: string, inC: number, outC: number, k: number, stride: number, seed: number, bnWeight = 1): ConvBn {
  return { conv: addConv(sink, conv, inC, outC, k, seed, { stride }), bn: addBatchNorm(sink, bn, outC, 1e-5, 0.1, bnWeight) };
}

function applyConvBn(x: tf.Tensor4D, l: ConvBn, run: Run): tf.Tensor4D {
  return batchNorm(conv2d(x, l.conv), l.bn, run.training);
}

/** ResNet with torchvision's layout and weight names (conv1, bn1, layer1.0.conv1, …, the classifier as head). */
export function resnet(c: ResNetConfig): Architecture<Params> {
  const spec = RESNET_LAYERS[c.depth];
  if (!spec) throw new Error(`resnet: depth must be one of ${Object.keys(RESNET_LAYERS).join(', ')}, got ${c.depth}`);
  const expansion = spec.bottleneck ? 4 : 1;
  return {
    kind: `resnet${c.depth}`,
    featureDim: 512 * expansion,
    build(sink: ParamSink, numClasses: number, seed: number): Params {
      const stem = convBn(sink, 'conv1', 'bn1', c.channels, 64, 7, 2, seed);
      let inC = 64;
      const layers = spec.blocks.map((count, li) => {
        const width = 64 * 2 ** li;
        return Array.from({ length: count }, (_, bi) => {
          const name = `layer${li + 1}.${bi}`;
          const stride = bi === 0 && li > 0 ? 2 : 1;
          const outC = width * expansion;
          const lastScale = c.zeroInitResidual ? 0 : 1;
          const convs = spec.bottleneck
            ? [
                convBn(sink, `${name}.conv1`, `${name}.bn1`, inC, width, 1, 1, seed),
                convBn(sink, `${name}.conv2`, `${name}.bn2`, width, width, 3, stride, seed),
                convBn(sink, `${name}.conv3`, `${name}.bn3`, width, outC, 1, 1, seed, lastScale),
              ]
            : [
                convBn(sink, `${name}.conv1`, `${name}.bn1`, inC, width, 3, stride, seed),
                convBn(sink, `${name}.conv2`, `${name}.bn2`, width, width, 3, 1, seed, lastScale),
              ];
          const downsample = stride !== 1 || inC !== outC ? convBn(sink, `${name}.downsample.0`, `${name}.downsample.1`, inC, outC, 1, stride, seed) : null;
          inC = outC;
          return { convs, downsample };
        });
      });
      // nn.Linear's default initialisation, as torchvision leaves the classifier.
      return { stem, layers, head: addDense(sink, 'head', inC, numClasses, seed) };
    },
    features(p: Params, x: tf.Tensor4D, run: Run): tf.Tensor2D {
      let h = maxPool(tf.relu(applyConvBn(x, p.stem, run)), 3, 2, 1);
      for (const layer of p.layers) {
        for (const block of layer) {
          let branch = h;
          block.convs.forEach((l, i) => {
            branch = applyConvBn(branch, l, run);
            if (i < block.convs.length - 1) branch = tf.relu(branch);
          });
          const identity = block.downsample ? applyConvBn(h, block.downsample, run) : h;
          h = tf.relu(tf.add(branch, identity)) as tf.Tensor4D;
        }
      }
      return globalAvgPool(h);
    },
    classify(p: Params, f: tf.Tensor2D): tf.Tensor2D {
      return dense(f, p.head);
    },
  };
}
