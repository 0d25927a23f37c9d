import * as tf from '@tensorflow/tfjs';
import type { ImagePool } from '../../../src/contracts/dataset.ts';
import type { StageHooks } from '../../../src/contracts/stages.ts';
import { Rng } from '../../../src/core/rng.ts';
import { epochBatches } from '../../../src/train/batches.ts';
import { TrainLoop, type LoopResult } from '../../../src/train/loop.ts';
import type { TrainingParts } from '../../../src/train/resume.ts';
import { cosineDecayLr } from '../../../src/train/schedule.ts';
import type { TrainingStageOptions } from '../../../src/train/stage-options.ts';

/**
 * The pre-training loop the `pretrain` plugins share: the pool shuffled per epoch into full
 * batches, warm-up + cosine learning rate. `step` trains on one batch of pool indices and returns
 * the loss. The batch order of an epoch and each step's randomness are derived from the seed and
 * their index, so the weights and the optimizer are all a resumed loop needs.
 */
export function poolLoop(args: {
  poolSize: number;
  options: TrainingStageOptions;
  seed: number;
  hooks: StageHooks;
  /** What the step changes (weights, optimizer): saved after each epoch when hooks.checkpoint is set. */
  parts: TrainingParts;
  step(indices: Int32Array, lr: number, step: number): number;
}): Promise<LoopResult> {
  const { options: o } = args;
  const pool = Int32Array.from({ length: args.poolSize }, (_, i) => i);
  const batchSize = Math.min(o.batch_size, args.poolSize);
  const loop = new TrainLoop<Int32Array>(
    {
      budget: {
        epochs: o.epochs,
        stepsPerEpoch: Math.max(1, Math.floor(args.poolSize / batchSize)),
        minSteps: o.min_steps,
        maxSteps: o.max_steps,
        warmupEpochs: o.warmup_epochs,
        warmupLr: o.warmup_lr,
      },
      schedule: (step, _epoch, plan) => cosineDecayLr(step, { totalSteps: plan.totalSteps, warmupSteps: plan.warmupSteps, maxLr: o.lr, minLr: o.min_lr }),
      parts: args.parts,
      batches: (epoch) => epochBatches(pool, batchSize, (a) => Rng.derive(args.seed, 'order', epoch).shuffle(a)),
      step: (idx, at) => ({ loss: args.step(idx, at.lr, at.step) }),
    },
    args.hooks,
  );
  return loop.run();
}

/** The mean loss of the last epoch that ran, for a stage's summary ('' when none ran). */
export function finalLoss(result: LoopResult): string {
  const loss = result.last.loss;
  return loss !== undefined && Number.isFinite(loss) ? `, final loss ${loss.toFixed(3)}` : '';
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
