import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import { options, Type } from '../../src/core/schema.ts';
import { withoutTape } from '../../src/engine/tape.ts';
import { softTargetCrossEntropy } from '../../src/train/losses.ts';
import { mixPairs } from './internal/pair.ts';

export default definePlugin({
  kind: 'mixing',
  name: 'mixup',
  description: 'Mixup: x̃ = λ·x_i + (1 − λ)·x_j, λ ~ Beta(α, α), soft-target cross-entropy on the virtual image only',
  options: options({ alpha: Type.Number({ exclusiveMinimum: 0, default: 1, description: 'Beta(α, α) parameter (the authors: 1.0)' }) }),
  create: ({ alpha }) => ({
    name: 'mixup',
    loss(batch, ctx) {
      let lambda = 0;
      const loss = tf.tidy(() => {
        // The pair and its targets are data to the gradient: computed off the tape.
        const m = withoutTape(() => mixPairs(batch, ctx, alpha));
        lambda = m.lambda;
        return tf.mean(softTargetCrossEntropy(ctx.logits(m.mixed), m.targets)) as tf.Scalar;
      });
      return { loss, stats: { lambda } };
    },
  }),
});
