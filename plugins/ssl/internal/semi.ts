import * as tf from '@tensorflow/tfjs';
import { choice, slot, Type, type Static, type TObject } from '../../../src/core/schema.ts';
import { trainingStageOptions } from '../../../src/train/stage-options.ts';
import { fineTuningOptimizer, layerDecayOption } from '../../../src/train/fine-tuning-optimizer.ts';
import type { Backbone } from '../../../src/contracts/backbone.ts';
import type { CellState, FineTuneResult, FineTuningStage, StageHooks } from '../../../src/contracts/stages.ts';
import type { PluginContext } from '../../../src/core/plugin.ts';
import type { Augmentation } from '../../../src/contracts/training.ts';
import { Rng } from '../../../src/core/rng.ts';
import { gatherBoxes, gatherImages } from '../../../src/train/batches.ts';
import { Ema } from '../../../src/train/ema.ts';
import { crossEntropy, weightedMean } from '../../../src/train/losses.ts';
import type { AdamW } from '../../../src/train/optimizer.ts';
import { TrainLoop, type LoopResult } from '../../../src/train/loop.ts';
import { stepDecayLr } from '../../../src/train/schedule.ts';

/** The pseudo-label options the semi-supervised plugins share (listed after the EMA teacher's momentum). */
export function pseudoLabelOptions() {
  return {
    threshold: Type.Number({ minimum: 0, maximum: 1, default: 0.7, description: 'confidence τ a pseudo-label needs' }),
    unlabeled_weight: Type.Number({ minimum: 0, default: 5, description: 'μ in L = L_l + μ·L_u' }),
    unlabeled_ratio: Type.Number({ exclusiveMinimum: 0, default: 1, description: 'unlabeled images per labeled image in a batch' }),
    milestones: Type.Array(Type.Integer({ minimum: 0 }), {
      default: [],
      description: 'epochs at which the lr is multiplied by gamma; none: a constant rate (the authors build MultiStepLR([20, 40, 60]) but never step it)',
    }),
    gamma: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.1 }),
  };
}

/** The views and the training options the semi-supervised plugins share. */
export function semiStageOptions() {
  return {
    weak: slot('augment', 'weak', 'augmentation of the teacher input'),
    strong: slot('augment', 'strong', 'augmentation of the student input'),
    ...trainingStageOptions({
      epochs: 50,
      warmup_epochs: 0,
      lr: 1.5e-4,
      min_lr: 1.5e-6,
      warmup_lr: 1.5e-4,
      batch_size: 64,
      weight_decay: 0.05,
      betas: [0.9, 0.95],
    }),
    layer_decay: layerDecayOption(),
    starts_from: choice(['weights', 'ema'], {
      default: 'weights',
      description:
        'what the stage starts from: the supervised stage’s weights as it left them (the authors: ModelEma(model) of the student) or its EMA (when evaluation.use_ema)',
    }),
  };
}

/** The options of a semi-supervised plugin after validation (momentum and evaluate only for the EMA teacher). */
export type SemiOptions = Static<TObject<ReturnType<typeof pseudoLabelOptions> & ReturnType<typeof semiStageOptions>>> & {
  momentum?: number;
  evaluate?: 'teacher' | 'student';
};

/**
 * An endless supply of batches from a pool: shuffled, cut into full batches, reshuffled
 * (with a new seed) whenever it runs out, so a small labeled set can pair with a large unlabeled one.
 */
export class Cycler {
  private batches: Int32Array[] = [];
  private pass = 0;

  constructor(
    private readonly pool: Int32Array,
    readonly batchSize: number,
    private readonly seed: number,
  ) {}

  next(): Int32Array {
    if (this.batches.length === 0) {
      const order = Int32Array.from(this.pool);
      Rng.derive(this.seed, 'pass', this.pass++).shuffle(order);
      for (let s = 0; s + this.batchSize <= order.length; s += this.batchSize) this.batches.push(order.slice(s, s + this.batchSize));
      this.batches.reverse();
    }
    return this.batches.pop()!;
  }
}

/** Per-step figures of the unlabeled branch, read back for logs. */
interface StepFigures {
  loss: number;
  lossLabeled: number;
  lossUnlabeled: number;
  maskRate: number;
  correct: number;
  confident: number;
  confidentCorrect: number;
}

/** A semi-supervised stage: its views resolved from its slots, its teacher the EMA or the student itself. */
export function semiStage(name: string, teacher: 'ema' | 'student', o: SemiOptions, pctx: PluginContext): FineTuningStage {
  const weak = pctx.resolve('augment', o.weak);
  const strong = pctx.resolve('augment', o.strong);
  return {
    name,
    startsFrom: o.starts_from,
    run: (cell, hooks) => runSemi(cell, hooks, o, { name, teacher, weak, strong }),
  };
}

/**
 * Semi-supervised fine-tuning with pseudo-labels: the EMA teacher (`teacher: 'ema'`) or
 * FixMatch (`teacher: 'student'`, pseudo-labels from the student itself). Per step, with a
 * labeled batch x_l and an unlabeled batch x_u:
 *   p = softmax(teacher(A_weak(x_u))), ŷ = argmax p, mask = 1[max p > τ]   (no gradient)
 *   L = mean CE(student(A_weak(x_l)), y) + μ · (1/N_U) Σ mask · CE(student(A_strong(x_u)), ŷ)
 * An epoch is one pass over whichever pool needs more batches (normally the unlabeled one); the
 * other pool is cycled. The learning rate is warmed up linearly over warmup_epochs (none by
 * default) and then decays by gamma at each milestone epoch (MultiStepLR); min_lr is not used.
 */
export async function runSemi(
  ctx: CellState,
  hooks: StageHooks,
  o: SemiOptions,
  mode: { name: string; teacher: 'ema' | 'student'; weak: Augmentation; strong: Augmentation },
): Promise<FineTuneResult> {
  const { model, data } = ctx;
  if (ctx.unlabeled.length === 0) return { summary: `${mode.name}: no unlabeled images, stage skipped` };
  if (ctx.labeled.length === 0) return { summary: `${mode.name}: no labeled images, stage skipped` };
  const numClasses = data.classes.length;
  const size = data.imageSize;
  const batchL = Math.min(o.batch_size, ctx.labeled.length);
  const batchU = Math.min(Math.max(1, Math.round(o.batch_size * o.unlabeled_ratio)), ctx.unlabeled.length);
  const labeledPos = Int32Array.from({ length: ctx.labeled.length }, (_, i) => i);
  // Batches and augmentations do not depend on the framework: FixMatch and the EMA teacher see
  // the same draws, so Table 12 compares the teachers alone (and m = 0 reproduces FixMatch).
  const labeledCycle = new Cycler(labeledPos, batchL, Rng.derive(ctx.seed, 'semi', 'labeled').seed());
  const unlabeledCycle = new Cycler(ctx.unlabeled, batchU, Rng.derive(ctx.seed, 'semi', 'unlabeled').seed());
  const stepsPerEpoch = Math.max(1, Math.floor(ctx.unlabeled.length / batchU), Math.floor(ctx.labeled.length / batchL));

  const optimizer = fineTuningOptimizer(model, o, 'semi');
  let teacher: Backbone = model;
  let averager: Ema | null = null;
  const evaluateTeacher = mode.teacher === 'ema' && (o.evaluate ?? 'teacher') === 'teacher';
  let result: LoopResult;
  try {
    if (mode.teacher === 'ema') {
      teacher = ctx.buildCopy();
      averager = new Ema(teacher.namedVariables(), model.namedVariables(), o.momentum ?? 0.999);
      averager.copy();
    }
    const sums = { correct: 0, seen: 0, confident: 0, confidentCorrect: 0 };
    const loop = new TrainLoop<{ idxL: Int32Array; idxU: Int32Array }>(
      {
        budget: { epochs: o.epochs, stepsPerEpoch, minSteps: o.min_steps, maxSteps: o.max_steps, warmupEpochs: o.warmup_epochs, warmupLr: o.warmup_lr },
        schedule: (_step, epoch) => stepDecayLr(epoch, { baseLr: o.lr, gamma: o.gamma, milestones: o.milestones }),
        parts: { weights: model.namedVariables(), optimizer, emas: { teacher: averager } },
        *batches() {
          Object.assign(sums, { correct: 0, seen: 0, confident: 0, confidentCorrect: 0 });
          for (let k = 0; k < stepsPerEpoch; k++) yield { idxL: Int32Array.from(labeledCycle.next(), (p) => ctx.labeled[p]!), idxU: unlabeledCycle.next() };
        },
        step({ idxL, idxU }, at) {
          const rng = Rng.derive(ctx.seed, 'semi', 'step', at.step);
          const f = trainStep({
            ctx,
            o,
            model,
            teacher,
            optimizer,
            weak: mode.weak,
            strong: mode.strong,
            idxL,
            labels: Int32Array.from(idxL, (i) => ctx.labels[i]!),
            idxU,
            numClasses,
            size,
            lr: at.lr,
            rng,
          });
          averager?.update();
          sums.correct += f.correct;
          sums.seen += idxU.length;
          sums.confident += f.confident;
          sums.confidentCorrect += f.confidentCorrect;
          return { loss: f.loss, loss_labeled: f.lossLabeled, loss_unlabeled: f.lossUnlabeled, mask_rate: f.maskRate };
        },
        summary: (_epoch, steps) => ({
          loss: steps.reduce((a, m) => a + m.loss!, 0) / steps.length,
          mask_rate: steps.reduce((a, m) => a + m.mask_rate!, 0) / steps.length,
          pseudo_accuracy: sums.correct / sums.seen,
          // Accuracy of the pseudo-labels that passed the threshold (NaN when none did).
          pseudo_accuracy_confident: sums.confident > 0 ? sums.confidentCorrect / sums.confident : Number.NaN,
        }),
        // Each step's randomness is derived from its index; only the batch cyclers need replaying.
        restored({ step }) {
          for (let k = 0; k < step; k++) {
            labeledCycle.next();
            unlabeledCycle.next();
          }
        },
      },
      hooks,
    );
    result = await loop.run();
    if (evaluateTeacher && averager) new Ema(model.namedVariables(), teacher.namedVariables(), 0).copy();
  } finally {
    optimizer.dispose();
    if (teacher !== model) teacher.dispose();
  }
  if (result.stopped) return { summary: `${mode.name}: stopped after ${result.steps} steps`, stopped: true };
  const last = result.last;
  const figures =
    last.mask_rate !== undefined
      ? `, last epoch: mask rate ${last.mask_rate.toFixed(2)}, pseudo-label accuracy ${last.pseudo_accuracy!.toFixed(2)}, loss ${last.loss!.toFixed(3)}`
      : '';
  const evaluated = mode.teacher === 'ema' ? `, evaluating the ${evaluateTeacher ? 'teacher' : 'student'}` : '';
  return {
    ...pseudoLabelHealth(result, o.threshold),
    trained: result.steps > 0,
    summary: `${mode.name}: ${result.epochs} epochs, ${result.steps} steps, ${ctx.unlabeled.length} unlabeled images, τ ${o.threshold}, μ ${o.unlabeled_weight}${figures}${evaluated}`,
  };
}

/** Below this share of unlabeled images passing τ in its last epoch, the stage trained on almost no pseudo-label. */
export const FEW_PSEUDO_LABELS = 0.05;

/**
 * The share of unlabeled images whose pseudo-label passed τ in the first and last epoch and the
 * accuracy of those that passed, and a note when almost none did.
 */
function pseudoLabelHealth(result: LoopResult, threshold: number): { health: Record<string, number>; notes: string[] } {
  const { first, last } = result;
  if (first.mask_rate === undefined || last.mask_rate === undefined) return { health: {}, notes: [] };
  const health = { mask_rate_first: first.mask_rate, mask_rate_last: last.mask_rate, pseudo_label_accuracy_last: last.pseudo_accuracy_confident ?? Number.NaN };
  const notes =
    last.mask_rate < FEW_PSEUDO_LABELS ? [`${(100 * last.mask_rate).toFixed(1)} % of unlabeled images passed τ = ${threshold} in the last epoch`] : [];
  return { health, notes };
}

/** One optimisation step; returns figures read back from the tensors. */
export function trainStep(a: {
  ctx: CellState;
  o: SemiOptions;
  model: Backbone;
  teacher: Backbone;
  optimizer: AdamW;
  weak: Augmentation;
  strong: Augmentation;
  idxL: Int32Array;
  labels: Int32Array;
  idxU: Int32Array;
  numClasses: number;
  size: number;
  lr: number;
  rng: Rng;
}): StepFigures {
  const { data } = a.ctx;
  const nL = a.idxL.length;
  const nU = a.idxU.length;
  const out = { lossLabeled: 0, lossUnlabeled: 0 };
  return tf.tidy(() => {
    const xl = gatherImages(data.train.images, a.idxL, a.size);
    const xu = gatherImages(data.train.images, a.idxU, a.size);
    const bl = gatherBoxes(data.train.boxes, a.idxL);
    const bu = gatherBoxes(data.train.boxes, a.idxU);
    const weakL = a.weak.apply(xl, bl, a.rng).images;
    const weakU = a.weak.apply(xu, bu, a.rng).images;
    const strongU = a.strong.apply(xu, bu, a.rng).images;
    // Pseudo-labels come from outside the gradient tape: no gradient reaches the teacher (or, in
    // FixMatch, the student through its own targets).
    const probs = tf.softmax(a.teacher.logits(weakU, { training: false }));
    const confidence = tf.max(probs, 1) as tf.Tensor1D;
    const pseudo = tf.argMax(probs, 1) as tf.Tensor1D;
    const mask = tf.cast(tf.greater(confidence, a.o.threshold), 'float32') as tf.Tensor1D;
    const y = tf.tensor1d(a.labels, 'int32');
    const loss = a.optimizer.minimize(() => {
      // One forward pass over both batches: per-op overhead dominates small models on CPU backends.
      const logits = a.model.logits(tf.concat([weakL, strongU], 0) as tf.Tensor4D, { training: true });
      const ll = tf.mean(crossEntropy(tf.slice(logits, [0, 0], [nL, -1]) as tf.Tensor2D, y, a.numClasses));
      const lu = weightedMean(crossEntropy(tf.slice(logits, [nL, 0], [nU, -1]) as tf.Tensor2D, pseudo, a.numClasses), mask);
      out.lossLabeled = ll.dataSync()[0]!;
      out.lossUnlabeled = lu.dataSync()[0]!;
      return tf.add(ll, tf.mul(lu, a.o.unlabeled_weight)) as tf.Scalar;
    }, a.lr);
    const m = mask.dataSync();
    const p = pseudo.dataSync();
    let confident = 0;
    let correct = 0;
    let confidentCorrect = 0;
    for (let i = 0; i < nU; i++) {
      const right = p[i] === data.train.labels[a.idxU[i]!];
      if (right) correct++;
      if (m[i]! > 0) {
        confident++;
        if (right) confidentCorrect++;
      }
    }
    return { loss, ...out, maskRate: confident / nU, correct, confident, confidentCorrect };
  });
}
