import * as tf from '@tensorflow/tfjs';
import type { ImagePool } from '../../../src/contracts/dataset.ts';
import type { StageHooks } from '../../../src/contracts/stages.ts';
import { Rng } from '../../../src/core/rng.ts';
import { epochBatches } from '../../../src/train/batches.ts';
import type { TrainingStageOptions } from '../../../src/train/stage-options.ts';
import { restoreTraining, saveTraining, yieldToEventLoop, type TrainingParts } from '../../../src/train/resume.ts';
import { warmupCosineLr } from '../../../src/train/schedule.ts';

/** The options `trainingStageOptions` declares, after validation. */
export type StageOptions = TrainingStageOptions;

export interface LoopResult {
  readonly steps: number;
  /** Epochs begun (the last one may be cut by max_steps or a stop). */
  readonly epochs: number;
  readonly stopped: boolean;
  /** Mean loss of the last epoch run (NaN when no step ran). */
  readonly finalLoss: number;
}

/**
 * The pre-training loop shared by the `pretrain` plugins: the pool shuffled per epoch into full
 * batches, warm-up + cosine learning rate per step, max_steps, Ctrl-C and the hooks. `step`
 * trains on one batch of pool indices and returns the loss.
 */
export async function pretrainLoop(args: {
  poolSize: number;
  options: StageOptions;
  seed: number;
  hooks: StageHooks;
  /** What the step changes (weights, optimizer): saved after each epoch when hooks.checkpoint is set. */
  parts: TrainingParts;
  step(indices: Int32Array, lr: number, step: number, epoch: number): number;
}): Promise<LoopResult> {
  const { options: o, hooks } = args;
  const pool = Int32Array.from({ length: args.poolSize }, (_, i) => i);
  const batchSize = Math.min(o.batch_size, args.poolSize);
  const stepsPerEpoch = Math.max(1, Math.floor(args.poolSize / batchSize));
  const planned = o.epochs * stepsPerEpoch;
  const totalSteps = o.max_steps ? Math.min(o.max_steps, planned) : planned;
  const info = { epochs: o.epochs, stepsPerEpoch, totalSteps };
  if (totalSteps === 0) return { steps: 0, epochs: 0, stopped: false, finalLoss: Number.NaN };
  const schedule = {
    totalSteps,
    warmupSteps: Math.min(totalSteps, Math.round(o.warmup_epochs * stepsPerEpoch)),
    warmupInitLr: o.warmup_lr,
    maxLr: o.lr,
    minLr: o.min_lr,
  };
  let step = 0;
  let epochsRun = 0;
  let finalLoss = Number.NaN;
  let firstEpoch = 0;
  const restored = hooks.checkpoint ? await restoreTraining(hooks.checkpoint, args.parts) : null;
  if (restored) {
    ({ step, epoch: firstEpoch } = restored);
    epochsRun = firstEpoch;
    finalLoss = typeof restored.meta.finalLoss === 'number' ? restored.meta.finalLoss : Number.NaN;
  }
  // The batch order of an epoch and each step's randomness are derived from the seed and their
  // index, so the weights and the optimizer are all a resumed loop needs.
  for (let epoch = firstEpoch; epoch < o.epochs && step < totalSteps; epoch++) {
    epochsRun++;
    const order = Rng.derive(args.seed, 'order', epoch);
    let sum = 0;
    let count = 0;
    for (const idx of epochBatches(pool, batchSize, (a) => order.shuffle(a))) {
      if (step >= totalSteps) break;
      await yieldToEventLoop();
      if (hooks.shouldStop()) return { steps: step, epochs: epochsRun, stopped: true, finalLoss: count ? sum / count : finalLoss };
      const lr = warmupCosineLr(step, schedule);
      const loss = args.step(idx, lr, step, epoch);
      step++;
      sum += loss;
      count++;
      hooks.onStep({ step, epoch, loss, lr }, info);
    }
    finalLoss = count ? sum / count : finalLoss;
    hooks.onEpoch?.(epoch, { loss: finalLoss });
    if (hooks.checkpoint) await saveTraining(hooks.checkpoint, args.parts, { epoch: epoch + 1, step }, { finalLoss });
  }
  return { steps: step, epochs: epochsRun, stopped: false, finalLoss };
}

/** Face boxes of pool images where the pool has them, else the whole image. */
export function poolBoxes(pool: ImagePool, indices: ArrayLike<number>): tf.Tensor2D {
  const known = (pool as ImagePool & { boxes?: Float32Array }).boxes;
  const out = new Float32Array(indices.length * 4);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i]!;
    if (known && known.length >= (j + 1) * 4) out.set(known.subarray(j * 4, j * 4 + 4), i * 4);
    else out.set([0, 0, pool.imageSize, pool.imageSize], i * 4);
  }
  return tf.tensor2d(out, [indices.length, 4]);
}

/** Encoder weights without the classifier, as fresh handles the caller owns. */
export function encoderWeights(vars: ReadonlyMap<string, tf.Variable>): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, v] of vars) if (!name.startsWith('head.')) out[name] = tf.clone(v);
  return out;
}
