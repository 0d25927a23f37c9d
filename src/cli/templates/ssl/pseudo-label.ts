// An `ssl` plugin (stage 3, semi-supervised fine-tuning): Pseudo-Label (Lee, 2013). Each step
// trains on a labeled batch and on an unlabeled batch whose labels are the model's own confident
// predictions: L = CE(labeled) + μ · mean(mask · CE(unlabeled, argmax p)), mask = 1[max p ≥ τ].
// The stage trains the cell's model in place on the one training loop every stage uses, which
// also saves a checkpoint after each epoch and resumes from it. Try it with its recipe:
//   ssfer plugins ssl --plugin pseudo-label.ts
//   ssfer run pseudo-label.yaml --scale smoke
import {
  AdamW,
  cosineDecayLr,
  crossEntropy,
  definePlugin,
  gatherImages,
  gatherLabels,
  lossHealth,
  options,
  Rng,
  tf,
  trainingStageOptions,
  TrainLoop,
  Type,
  weightedMean,
  type FineTuningStage,
} from 'ssfer';

export default definePlugin({
  kind: 'ssl',
  name: 'pseudo-label',
  description: 'Pseudo-Label (Lee 2013): the model’s own confident predictions on unlabeled images as their labels',
  options: options({
    // epochs, lr, batch_size, max_steps… as every training stage has them.
    ...trainingStageOptions({ epochs: 10, warmup_epochs: 0, lr: 1e-4, min_lr: 1e-6, warmup_lr: 1e-4, batch_size: 32, weight_decay: 0.05 }),
    threshold: Type.Number({ minimum: 0, maximum: 1, default: 0.9, description: 'τ: the confidence a prediction needs to count as a label' }),
    unlabeled_weight: Type.Number({ minimum: 0, default: 1, description: 'μ: the weight of the unlabeled images’ loss' }),
  }),
  create: (o): FineTuningStage => ({
    name: 'pseudo-label',
    // It continues from the weights the supervised stage left (not from that stage's EMA).
    startsFrom: 'weights',
    async run(cell, hooks) {
      const { model, data } = cell;
      if (cell.labeled.length === 0 || cell.unlabeled.length === 0) return { summary: 'pseudo-label: no labeled or no unlabeled images, nothing to do' };
      const numClasses = data.classes.length;
      const batchL = Math.min(o.batch_size, cell.labeled.length);
      const batchU = Math.min(o.batch_size, cell.unlabeled.length);
      const stepsPerEpoch = Math.max(1, Math.floor(cell.unlabeled.length / batchU));
      const trainable = new Map([...model.namedVariables()].filter(([, v]) => v.trainable));
      const optimizer = new AdamW(trainable, {
        beta1: o.betas[0],
        beta2: o.betas[1],
        weightDecay: o.weight_decay,
        noDecay: (name) => model.noWeightDecay(name),
      });
      try {
        const loop = new TrainLoop<{ labeled: Int32Array; unlabeled: Int32Array }>(
          {
            budget: { epochs: o.epochs, stepsPerEpoch, minSteps: o.min_steps, maxSteps: o.max_steps, warmupEpochs: o.warmup_epochs, warmupLr: o.warmup_lr },
            schedule: (step, _epoch, plan) => cosineDecayLr(step, { totalSteps: plan.totalSteps, warmupSteps: plan.warmupSteps, maxLr: o.lr, minLr: o.min_lr }),
            // What the steps change: saved after each epoch, restored on resume.
            parts: { weights: model.namedVariables(), optimizer },
            *batches(epoch) {
              // Drawn from the stage's seed and the epoch alone, so a resumed run draws the same batches.
              const rng = Rng.derive(cell.seed, 'pseudo-label', epoch);
              const unlabeled = rng.shuffle(Int32Array.from(cell.unlabeled));
              for (let k = 0; k < stepsPerEpoch; k++) {
                const labeled = Int32Array.from({ length: batchL }, () => cell.labeled[rng.int(cell.labeled.length)]!);
                yield { labeled, unlabeled: unlabeled.subarray(k * batchU, (k + 1) * batchU) };
              }
            },
            step(batch, at) {
              const xl = gatherImages(data.train.images, batch.labeled, data.imageSize);
              const yl = gatherLabels(cell.labels, batch.labeled);
              const xu = gatherImages(data.train.images, batch.unlabeled, data.imageSize);
              // The labels of the unlabeled images come from the model before the step, outside the gradient.
              const [guess, mask] = tf.tidy(() => {
                const p = tf.softmax(model.logits(xu));
                return [tf.argMax(p, 1) as tf.Tensor1D, tf.cast(tf.greaterEqual(tf.max(p, 1), o.threshold), 'float32') as tf.Tensor1D];
              });
              const passed = Array.from(mask.dataSync()).reduce((a, b) => a + b, 0) / batch.unlabeled.length;
              try {
                const loss = optimizer.minimize(() => {
                  const labeledLoss = tf.mean(crossEntropy(model.logits(xl, { training: true }), yl, numClasses));
                  const unlabeledLoss = weightedMean(crossEntropy(model.logits(xu, { training: true }), guess, numClasses), mask);
                  return tf.add(labeledLoss, tf.mul(unlabeledLoss, o.unlabeled_weight)) as tf.Scalar;
                }, at.lr);
                // Per-step figures by name: logged, plotted and tracked as they are.
                return { loss, mask_rate: passed };
              } finally {
                tf.dispose([xl, yl, xu, guess, mask]);
              }
            },
          },
          hooks,
        );
        const result = await loop.run();
        // Whether the stage did its job: its loss at the first and last epoch, and the share of labels that passed τ.
        const { health, notes } = lossHealth(result);
        return {
          summary: `${result.epochs} epochs, ${result.steps} steps, ${((result.last.mask_rate ?? 0) * 100).toFixed(0)} % of unlabeled images passed τ in the last epoch`,
          health: { ...health, mask_rate_last: result.last.mask_rate ?? 0 },
          notes,
          trained: result.steps > 0,
          steps: result.steps,
          epochs: result.epochs,
          stopped: result.stopped,
        };
      } finally {
        optimizer.dispose();
      }
    },
  }),
});
