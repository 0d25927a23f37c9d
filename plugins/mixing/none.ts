import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import type { MixingStrategy } from '../../src/contracts/training.ts';
import { crossEntropy } from '../../src/train/losses.ts';

export default definePlugin<Record<string, never>, MixingStrategy>({
  kind: 'mixing',
  name: 'none',
  description: 'no mixing: label-smoothed cross-entropy on the labeled images',
  options: { type: 'object', properties: {} },
  create: () => ({
    name: 'none',
    loss(batch, ctx) {
      const loss = tf.tidy(() => tf.mean(crossEntropy(ctx.logits(batch.images), batch.labels, ctx.numClasses, ctx.labelSmoothing)) as tf.Scalar);
      return { loss, stats: {} };
    },
  }),
});
