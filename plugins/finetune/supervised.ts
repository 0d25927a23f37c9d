import * as tf from '@tensorflow/tfjs';
import type { Backbone } from '../../src/contracts/backbone.ts';
import type { CellState, FineTuningStage, StageHooks } from '../../src/contracts/stages.ts';
import type { Augmentation, MixingStrategy } from '../../src/contracts/training.ts';
import { definePlugin } from '../../src/core/plugin.ts';
import { Rng } from '../../src/core/rng.ts';
import { choice, nullable, options, slot, Type, type Static } from '../../src/core/schema.ts';
import { epochBatches, gatherBoxes, gatherImages, gatherLabels } from '../../src/train/batches.ts';
import { Ema } from '../../src/train/ema.ts';
import { lossHealth } from '../../src/train/health.ts';
import { TrainLoop, type TrainProgram } from '../../src/train/loop.ts';
import { authorsEpochCosineLr, cosineDecayLr } from '../../src/train/schedule.ts';
import { trainingStageOptions } from '../../src/train/stage-options.ts';
import { fineTuningOptimizer, layerDecayOption } from '../../src/train/fine-tuning-optimizer.ts';

const supervisedOptions = options({
  ...trainingStageOptions({ epochs: 100, warmup_epochs: 5, lr: 1e-4, min_lr: 1e-5, warmup_lr: 5e-5, batch_size: 32, weight_decay: 0.05, betas: [0.9, 0.95] }),
  few_labels_epochs: Type.Integer({ minimum: 0, default: 1000, description: 'epochs when fewer than few_labels_threshold labels (the paper: 1000 below 500)' }),
  few_labels_threshold: Type.Integer({ minimum: 0, default: 500 }),
  schedule: choice(['timm-epoch', 'cosine-step'], {
    default: 'timm-epoch',
    description:
      'timm-epoch: the authors’ timm CosineLRScheduler, updated once per epoch, warm-up over warmup_epochs from warmup_lr, a cosine over cosine_epochs, then flat at min_lr; cosine-step: a per-step linear warm-up and one cosine over every step',
  }),
  cosine_epochs: nullable(Type.Integer({ minimum: 1 }), {
    default: null,
    description: 'timm-epoch: epochs of the cosine (timm’s t_initial); null: half the epochs, as the authors',
  }),
  label_smoothing: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0.1,
    description: 'label smoothing ε of the mixed images’ soft targets (Mixup, FaceMix’s L_v; the authors: 0.1)',
  }),
  real_label_smoothing: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0,
    description: 'label smoothing ε of the cross-entropy on real images (FaceMix’s L_i, L_j; no mixing); the authors: 0, plain cross-entropy',
  }),
  ema_decay: nullable(Type.Number({ minimum: 0, maximum: 1 }), { default: 0.999, description: 'EMA of the weights used for evaluation; null disables' }),
  layer_decay: layerDecayOption(),
  mixing: slot('mixing', 'facemix', 'none, mixup or facemix'),
  augment: slot('augment', 'weak', 'augmentation of the labeled images'),
});

export type SupervisedOptions = Static<typeof supervisedOptions>;

/** Epochs for a labeled-set size: the paper trains 1000 epochs when fewer than 500 labels. */
export function supervisedEpochs(o: SupervisedOptions, labeledCount: number): number {
  return labeledCount < o.few_labels_threshold ? o.few_labels_epochs : o.epochs;
}

/**
 * The stage's warm-up (run by the training loop, per step) and its schedule. timm-epoch warms up
 * inside the schedule, per epoch, as timm does, so the loop's own warm-up is off.
 */
export function supervisedSchedule(o: SupervisedOptions, epochs: number): { warmupEpochs: number; schedule: TrainProgram<unknown>['schedule'] } {
  if (o.schedule === 'cosine-step') {
    return {
      warmupEpochs: o.warmup_epochs,
      schedule: (step, _epoch, plan) => cosineDecayLr(step, { totalSteps: plan.totalSteps, warmupSteps: plan.warmupSteps, maxLr: o.lr, minLr: o.min_lr }),
    };
  }
  const timm = {
    tInitial: o.cosine_epochs ?? Math.max(1, Math.floor(epochs / 2)),
    warmupT: o.warmup_epochs,
    warmupLrInit: o.warmup_lr,
    lrMax: o.lr,
    lrMin: o.min_lr,
  };
  return { warmupEpochs: 0, schedule: (step, epoch, plan) => authorsEpochCosineLr(epoch, step - epoch * plan.stepsPerEpoch, timm) };
}

export default definePlugin({
  kind: 'finetune',
  name: 'supervised',
  description: 'supervised fine-tuning on the labeled images with a mixing strategy (FaceMix), AdamW, warm-up + cosine schedule and an EMA of the weights',
  options: supervisedOptions,
  create(o, pctx): FineTuningStage {
    const mixing = pctx.resolve('mixing', o.mixing);
    const augment = pctx.resolve('augment', o.augment);
    return {
      name: 'supervised',
      // The first fine-tuning stage: it starts from the (pre-trained) weights.
      startsFrom: 'weights',
      async run(cell, hooks) {
        const result = await trainSupervised(cell, o, mixing, augment, hooks);
        return {
          ...result,
          summary: `${result.epochs} epochs, ${result.steps} steps, ${mixing.name}`,
          ...(result.notes.length ? { notes: result.notes } : {}),
        };
      },
    };
  },
});

/**
 * Supervised fine-tuning of the cell's model on its labeled images. One random stream draws the
 * batch order, the augmentation and the mixing, so it is part of the checkpoint.
 */
async function trainSupervised(cell: CellState, o: SupervisedOptions, mixing: MixingStrategy, augment: Augmentation, hooks: StageHooks) {
  const { model, data, labeled } = cell;
  const rng = Rng.derive(cell.seed, 'supervised');
  const numClasses = data.classes.length;
  const epochs = supervisedEpochs(o, cell.budgetLabels ?? labeled.length);
  const batchSize = Math.min(o.batch_size, labeled.length);
  const { warmupEpochs, schedule } = supervisedSchedule(o, epochs);
  const optimizer = fineTuningOptimizer(model, o, 'supervised');
  let ema: Backbone | null = null;
  let averager: Ema | null = null;
  if (o.ema_decay !== null) {
    ema = cell.buildCopy();
    averager = new Ema(ema.namedVariables(), model.namedVariables(), o.ema_decay);
    averager.copy();
  }
  const notes = new Set<string>();
  // The mixing strategy's guard runs first: a degenerate epoch stops the stage before it is recorded or saved.
  const guarded: StageHooks = {
    ...hooks,
    async onEpoch(epoch, metrics) {
      const note = mixing.endEpoch?.(epoch);
      if (note) notes.add(note);
      await hooks.onEpoch?.(epoch, metrics);
    },
  };
  try {
    const loop = new TrainLoop<Int32Array>(
      {
        budget: {
          epochs,
          stepsPerEpoch: Math.max(1, Math.floor(labeled.length / batchSize)),
          minSteps: o.min_steps,
          maxSteps: o.max_steps,
          warmupEpochs,
          warmupLr: o.warmup_lr,
        },
        schedule,
        parts: { weights: model.namedVariables(), optimizer, emas: { weights: averager }, rng },
        batches: () => epochBatches(labeled, batchSize, (a) => rng.shuffle(a)),
        step(idx, at) {
          let stats: Record<string, number> = {};
          const loss = tf.tidy(() => {
            const raw = { images: gatherImages(data.train.images, idx, data.imageSize), boxes: gatherBoxes(cell.boxes, idx) };
            const aug = augment.apply(raw.images, raw.boxes, rng);
            const batch = { images: aug.images, boxes: aug.boxes, labels: gatherLabels(cell.labels, idx) };
            return optimizer.minimize(() => {
              const out = mixing.loss(batch, {
                numClasses,
                labelSmoothing: o.label_smoothing,
                realLabelSmoothing: o.real_label_smoothing,
                rng,
                logits: (x) => model.logits(x, { training: true }),
              });
              stats = { ...out.stats };
              return out.loss;
            }, at.lr);
          });
          averager?.update();
          return { loss, ...stats };
        },
      },
      guarded,
    );
    const result = await loop.run();
    const health = lossHealth(result);
    return { ema, trained: result.steps > 0, steps: result.steps, epochs, stopped: result.stopped, health: health.health, notes: [...health.notes, ...notes] };
  } catch (err) {
    ema?.dispose();
    throw err;
  } finally {
    optimizer.dispose();
  }
}
