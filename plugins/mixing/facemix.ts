import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import { options, slot, Type } from '../../src/core/schema.ts';
import { crossEntropy, softTargetCrossEntropy } from '../../src/train/losses.ts';
import { facemixKinds } from './internal/kinds.ts';
import { mixPairs } from './internal/pair.ts';

/** FaceMix's nested kinds: the κ metric and the loss combination (see internal/kinds.ts). */
export const kinds = facemixKinds;

export default definePlugin({
  kind: 'mixing',
  name: 'facemix',
  description: 'FaceMix: Mixup plus the real images’ losses weighted by κ from the face pair (κ plugin), combined by a mix-loss variant',
  options: options({
    alpha: Type.Number({ exclusiveMinimum: 0, default: 1, description: 'Beta(α, α) parameter (the authors: 1.0)' }),
    kappa: slot('kappa', 'iou', 'how κ is computed from the pair (the paper: κ = 1 − IoU of the face boxes)'),
    loss: slot('mix-loss', 'L4', 'how L_v, L_i, L_j and κ combine (the paper: L4)'),
  }),
  create(options, ctx) {
    const kappa = ctx.resolve('kappa', options.kappa);
    const combine = ctx.resolve('mix-loss', options.loss);
    return {
      name: `facemix(${kappa.name}, ${combine.name})`,
      loss(batch, mctx) {
        let lambda = 0;
        let kappaMean = 0;
        const loss = tf.tidy(() => {
          const m = mixPairs(batch, mctx, options.alpha);
          lambda = m.lambda;
          // κ and the real losses come from the original images, not the mixed batch (the
          // authors' code mixes in place and so computes them on mixed images — a defect).
          const k = tf.tidy(() =>
            kappa.kappa({ imagesA: batch.images, imagesB: m.partnerImages, boxesA: batch.boxes, boxesB: tf.gather(batch.boxes, m.partner) as tf.Tensor2D }),
          );
          kappaMean = tf.mean(k).dataSync()[0]!;
          // One forward pass over virtual and real images together: per-op overhead dominates
          // small models on CPU backends, so one batch of 2N is cheaper than two of N.
          const n = batch.images.shape[0];
          const logits = mctx.logits(tf.concat([m.mixed, batch.images], 0) as tf.Tensor4D);
          const lv = softTargetCrossEntropy(tf.slice(logits, [0, 0], [n, -1]) as tf.Tensor2D, m.targets);
          const li = crossEntropy(tf.slice(logits, [n, 0], [n, -1]) as tf.Tensor2D, batch.labels, mctx.numClasses, mctx.labelSmoothing);
          const lj = tf.gather(li, m.partner) as tf.Tensor1D;
          return tf.mean(combine.combine(lv, li, lj, k)) as tf.Scalar;
        });
        return { loss, stats: { lambda, kappa: kappaMean } };
      },
    };
  },
});
