import * as tf from '@tensorflow/tfjs';
import type { Backbone } from '../contracts/backbone.ts';
import type { FerData } from '../contracts/dataset.ts';
import type { Augmentation, MixingStrategy } from '../contracts/training.ts';
import { Rng } from '../core/rng.ts';
import type { CellConfig } from '../recipe/schema.ts';
import { Ema } from '../train/ema.ts';
import { AdamW } from '../train/optimizer.ts';
import { TrainLoop } from '../train/loop.ts';
import { cosineDecayLr } from '../train/schedule.ts';
import type { StageHooks } from '../contracts/stages.ts';
import { epochBatches, gatherBoxes, gatherImages, gatherLabels } from '../train/batches.ts';

/** The core `pipeline.supervised` options after validation. */
export type SupervisedOptions = CellConfig['pipeline']['supervised'];

export type SupervisedHooks = StageHooks;

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
  const trainable = new Map([...model.namedVariables()].filter(([, v]) => v.trainable));
  const optimizer = new AdamW(trainable, { beta1: o.betas[0], beta2: o.betas[1], weightDecay: o.weight_decay, noDecay: (name) => model.noWeightDecay(name) });
  let ema: Backbone | null = null;
  let averager: Ema | null = null;
  if (o.ema_decay !== null) {
    ema = args.buildCopy();
    averager = new Ema(ema.namedVariables(), model.namedVariables(), o.ema_decay);
    averager.copy();
  }
  try {
    const loop = new TrainLoop<Int32Array>(
      {
        budget: { epochs, stepsPerEpoch: Math.max(1, Math.floor(labeled.length / batchSize)), maxSteps: o.max_steps, warmupEpochs: o.warmup_epochs, warmupLr: o.warmup_lr },
        schedule: (step, _epoch, plan) => cosineDecayLr(step, { totalSteps: plan.totalSteps, warmupSteps: plan.warmupSteps, maxLr: o.lr, minLr: o.min_lr }),
        // One random stream draws the batch order, the augmentation and the mixing, so it is saved.
        parts: { weights: model.namedVariables(), optimizer, emas: { weights: averager }, rng },
        batches: () => epochBatches(labeled, batchSize, (a) => rng.shuffle(a)),
        step(idx, at) {
          let stats: Record<string, number> = {};
          const loss = tf.tidy(() => {
            const raw = { images: gatherImages(data.train.images, idx, data.imageSize), boxes: gatherBoxes(args.boxes, idx) };
            const aug = args.augment.apply(raw.images, raw.boxes, rng);
            const batch = { images: aug.images, boxes: aug.boxes, labels: gatherLabels(args.labels, idx) };
            return optimizer.minimize(() => {
              const out = args.mixing.loss(batch, { numClasses, labelSmoothing: o.label_smoothing, rng, logits: (x) => model.logits(x, { training: true }) });
              stats = { ...out.stats };
              return out.loss;
            }, at.lr);
          });
          averager?.update();
          return { loss, ...stats };
        },
      },
      hooks,
    );
    const result = await loop.run();
    return { ema, steps: result.steps, epochs, stopped: result.stopped };
  } finally {
    optimizer.dispose();
  }
}
