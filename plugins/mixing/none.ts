import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import { options } from '../../src/core/schema.ts';
import { crossEntropy } from '../../src/train/losses.ts';

export default definePlugin({
  kind: 'mixing',
  name: 'none',
  description: 'no mixing: cross-entropy on the labeled images (smoothed by real_label_smoothing; the authors: none)',
  options: options({}),
  create: () => ({
    name: 'none',
    loss(batch, ctx) {
      const loss = tf.tidy(() => tf.mean(crossEntropy(ctx.logits(batch.images), batch.labels, ctx.numClasses, ctx.realLabelSmoothing)) as tf.Scalar);
      return { loss, stats: {} };
    },
  }),
});
