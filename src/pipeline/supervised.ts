import * as tf from '@tensorflow/tfjs';
import type { Backbone } from '../contracts/backbone.ts';
import type { FerData } from '../contracts/dataset.ts';
import type { Augmentation, MixingStrategy } from '../contracts/training.ts';
import { Rng } from '../core/rng.ts';
import type { CellConfig } from '../recipe/schema.ts';
import { Ema } from '../train/ema.ts';
import { AdamW } from '../train/optimizer.ts';
import { restoreTraining, saveTraining, yieldToEventLoop } from '../train/resume.ts';
import { warmupCosineLr } from '../train/schedule.ts';
import type { CheckpointStore } from '../contracts/stages.ts';
import { epochBatches, gatherBoxes, gatherImages, gatherLabels } from '../train/batches.ts';

/** The core `pipeline.supervised` options after validation. */
export type SupervisedOptions = CellConfig['pipeline']['supervised'];

export interface StepLog {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  lambda?: number;
  kappa?: number;
}

export interface SupervisedHooks {
  /** Called every step with the running figures (for progress bars and tracking). */
  onStep(log: StepLog, info: { epochs: number; stepsPerEpoch: number; totalSteps: number }): void;
  /** Called after each epoch. */
  onEpoch?(epoch: number): void;
  /** True when the run should stop after the current step (Ctrl-C). */
  shouldStop(): boolean;
  /** Present when the stage saves a checkpoint after each epoch and resumes from it. */
  checkpoint?: CheckpointStore;
}

export interface SupervisedResult {
  /** A model holding the EMA of the weights (when ema_decay is set); the caller disposes it. */
  readonly ema: Backbone | null;
  readonly steps: number;
  readonly epochs: number;
  readonly stopped: boolean;
}

/** Epochs for a labeled-set size: the paper trains 1000 epochs when fewer than 500 labels. */
export function supervisedEpochs(o: SupervisedOptions, labeledCount: number): number {
  return labeledCount < o.few_labels_threshold ? o.few_labels_epochs : o.epochs;
}

/**
 * Stage 2: supervised fine-tuning of `model` on the labeled indices with a mixing strategy,
 * AdamW, warm-up + cosine schedule and an EMA of the weights.
 */
export async function trainSupervised(args: {
  model: Backbone;
  buildCopy: () => Backbone;
  data: FerData;
  labeled: Int32Array;
  labels: Int32Array;
  boxes: Float32Array;
  options: SupervisedOptions;
  mixing: MixingStrategy;
  augment: Augmentation;
  seed: number;
  hooks: SupervisedHooks;
}): Promise<SupervisedResult> {
  const { model, data, labeled, options: o, hooks } = args;
  const rng = Rng.derive(args.seed, 'supervised');
  const numClasses = data.classes.length;
  const epochs = supervisedEpochs(o, labeled.length);
  const batchSize = Math.min(o.batch_size, labeled.length);
  const stepsPerEpoch = Math.max(1, Math.floor(labeled.length / batchSize));
  const totalSteps = o.max_steps ? Math.min(o.max_steps, epochs * stepsPerEpoch) : epochs * stepsPerEpoch;
  const trainable = new Map([...model.namedVariables()].filter(([, v]) => v.trainable));
  const optimizer = new AdamW(trainable, { beta1: o.betas[0], beta2: o.betas[1], weightDecay: o.weight_decay, noDecay: (name) => model.noWeightDecay(name) });
  let ema: Backbone | null = null;
  let averager: Ema | null = null;
  if (o.ema_decay !== null) {
    ema = args.buildCopy();
    averager = new Ema(ema.namedVariables(), model.namedVariables(), o.ema_decay);
    averager.copy();
  }
  const schedule = { totalSteps, warmupSteps: Math.min(totalSteps, Math.round(o.warmup_epochs * stepsPerEpoch)), warmupInitLr: o.warmup_lr, maxLr: o.lr, minLr: o.min_lr };
  const parts = { weights: model.namedVariables(), optimizer, emas: { weights: averager }, rng };
  let step = 0;
  let firstEpoch = 0;
  let stopped = false;
  try {
    const restored = hooks.checkpoint ? await restoreTraining(hooks.checkpoint, parts) : null;
    if (restored) ({ step, epoch: firstEpoch } = restored);
    outer: for (let epoch = firstEpoch; epoch < epochs && step < totalSteps; epoch++) {
      for (const idx of epochBatches(labeled, batchSize, (a) => rng.shuffle(a))) {
        if (step >= totalSteps) break;
        await yieldToEventLoop();
        if (hooks.shouldStop()) {
          stopped = true;
          break outer;
        }
        const lr = warmupCosineLr(step, schedule);
        const stats: { lambda?: number; kappaMean?: number } = {};
        const loss = tf.tidy(() => {
          const raw = { images: gatherImages(data.train.images, idx, data.imageSize), boxes: gatherBoxes(args.boxes, idx) };
          const aug = args.augment.apply(raw.images, raw.boxes, rng);
          const batch = { images: aug.images, boxes: aug.boxes, labels: gatherLabels(args.labels, idx) };
          return optimizer.minimize(() => {
            const out = args.mixing.loss(batch, { numClasses, labelSmoothing: o.label_smoothing, rng, logits: (x) => model.logits(x, { training: true }) });
            Object.assign(stats, out.stats);
            return out.loss;
          }, lr);
        });
        averager?.update();
        step++;
        hooks.onStep({ step, epoch, loss, lr, lambda: stats.lambda, kappa: stats.kappaMean }, { epochs, stepsPerEpoch, totalSteps });
      }
      hooks.onEpoch?.(epoch);
      // After a cut by max_steps the remaining epochs have nothing to do: the state is final.
      if (hooks.checkpoint) await saveTraining(hooks.checkpoint, parts, { epoch: step >= totalSteps ? epochs : epoch + 1, step });
    }
  } finally {
    optimizer.dispose();
  }
  return { ema, steps: step, epochs, stopped };
}
