import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import { choice, options, slot, Type } from '../../src/core/schema.ts';
import { trainingStageOptions } from '../../src/train/stage-options.ts';
import { Rng } from '../../src/core/rng.ts';
import { gatherImages, gatherLabels } from '../../src/train/batches.ts';
import { crossEntropy } from '../../src/train/losses.ts';
import { AdamW } from '../../src/train/optimizer.ts';
import { lossHealth } from '../../src/train/health.ts';
import { encoderWeights, finalLoss, poolBoxes, poolLoop } from './internal/loop.ts';

export default definePlugin({
  kind: 'pretrain',
  name: 'supervised',
  description: 'supervised pre-training: classification on a labeled pool (Table 11, the ImageNet-21k row)',
  options: options({
    pool: options(
      {
        source: choice(['faces', 'generic'], { default: 'generic', description: 'which labeled pool to classify' }),
        size: Type.Integer({ minimum: 1, default: 1200000, description: 'images in the pool' }),
      },
      { additionalProperties: false, default: {} },
    ),
    label_smoothing: Type.Number({ minimum: 0, maximum: 1, default: 0.1, description: 'label smoothing ε of the cross-entropy' }),
    augment: slot('augment', 'weak', 'augmentation of the pool images'),
    ...trainingStageOptions({ epochs: 90, warmup_epochs: 5, lr: 1e-3, min_lr: 1e-5, warmup_lr: 1e-6, batch_size: 256, weight_decay: 0.05 }),
  }),
  create(o, pctx) {
    const augment = pctx.resolve('augment', o.augment);
    return {
      name: 'supervised',
      async run(ctx, hooks) {
        const pool = await ctx.pool(o.pool.source, o.pool.size);
        if (!pool.labels || !pool.numClasses) {
          throw new Error(`supervised pre-training: the ${pool.kind} pool has no labels; use pretrain: mae, or a pool source with classes`);
        }
        const labels = pool.labels;
        const numClasses = pool.numClasses;
        const model = ctx.backbone.build(numClasses, ctx.seed);
        const trainable = new Map([...model.namedVariables()].filter(([, v]) => v.trainable));
        const optimizer = new AdamW(trainable, {
          beta1: o.betas[0],
          beta2: o.betas[1],
          weightDecay: o.weight_decay,
          noDecay: (name) => model.noWeightDecay(name),
        });
        try {
          const result = await poolLoop({
            poolSize: pool.size,
            options: o,
            seed: Rng.derive(ctx.seed, 'supervised-pretrain').seed(),
            hooks,
            parts: { weights: model.namedVariables(), optimizer },
            step(idx, lr, step) {
              const rng = Rng.derive(ctx.seed, 'supervised-pretrain', 'step', step);
              return tf.tidy(() => {
                const raw = gatherImages(pool.images, idx, pool.imageSize, model.channels);
                const views = augment.apply(raw, poolBoxes(pool, idx), rng);
                const y = gatherLabels(labels, idx);
                return optimizer.minimize(
                  () => tf.mean(crossEntropy(model.logits(views.images, { training: true }), y, numClasses, o.label_smoothing)) as tf.Scalar,
                  lr,
                );
              });
            },
          });
          if (result.stopped) return { weights: null, stopped: true, summary: `supervised pre-training: stopped after ${result.steps} steps` };
          const loss = finalLoss(result);
          return {
            weights: encoderWeights(model.namedVariables()),
            ...lossHealth(result),
            summary: `supervised pre-training: ${result.epochs} epochs, ${result.steps} steps on ${pool.size} ${pool.kind} images, ${numClasses} classes${loss}`,
          };
        } finally {
          optimizer.dispose();
          model.dispose();
        }
      },
    };
  },
});
