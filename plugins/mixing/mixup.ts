import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import type { MixingStrategy } from '../../src/contracts/training.ts';
import { softTargetCrossEntropy } from '../../src/train/losses.ts';
import { mixPairs } from './internal/pair.ts';

export default definePlugin<{ alpha: number }, MixingStrategy>({
  kind: 'mixing',
  name: 'mixup',
  description: 'Mixup: x̃ = λ·x_i + (1 − λ)·x_j, λ ~ Beta(α, α), soft-target cross-entropy on the virtual image only',
  options: {
    type: 'object',
    properties: { alpha: { type: 'number', exclusiveMinimum: 0, default: 1, description: 'Beta(α, α) parameter (the authors: 1.0)' } },
  },
  create: ({ alpha }) => ({
    name: 'mixup',
    loss(batch, ctx) {
      let lambda = 0;
      const loss = tf.tidy(() => {
        const m = mixPairs(batch, ctx, alpha);
        lambda = m.lambda;
        return tf.mean(softTargetCrossEntropy(ctx.logits(m.mixed), m.targets)) as tf.Scalar;
      });
      return { loss, stats: { lambda } };
    },
  }),
});
