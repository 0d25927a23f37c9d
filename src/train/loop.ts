import type { Metrics, StageHooks, StagePlan } from '../contracts/stages.ts';
import { traced } from '../core/trace.ts';
import { restoreTraining, saveTraining, type TrainingParts } from './resume.ts';

/** How long a stage trains, in the options every training stage has. */
export interface Budget {
  readonly epochs: number;
  readonly stepsPerEpoch: number;
  /** Train at least this many steps, adding epochs (the last one cut) where the epochs give fewer; null: the epochs. */
  readonly minSteps: number | null;
  /** Stop after this many steps (smoke runs); null trains every epoch in full. Applied after minSteps. */
  readonly maxSteps: number | null;
  /** Epochs of linear warm-up (fractional ones allowed), from `warmupLr` to the schedule's rate. */
  readonly warmupEpochs: number;
  readonly warmupLr: number;
}

/** Where a step stands: the steps taken before it, its epoch, and its learning rate. */
export interface StepPosition {
  readonly step: number;
  readonly epoch: number;
  readonly lr: number;
}

/** A stage's side of the loop: its schedule, its batches and one optimisation step. */
export interface TrainProgram<B> {
  readonly budget: Budget;
  /** The learning rate after warm-up at a step, the stage's schedule (cosine decay, step decay…). */
  schedule(step: number, epoch: number, plan: StagePlan): number;
  /** What the steps change (weights, optimizer, EMA copies, a random stream): saved after each epoch, restored on resume. */
  readonly parts: TrainingParts;
  /** The batches of an epoch, drawn when the epoch begins; a generator draws one per step. */
  batches(epoch: number): Iterable<B>;
  /** One optimisation step: its loss and whatever else the stage reports. */
  step(batch: B, at: StepPosition): { readonly loss: number } & Metrics;
  /** The epoch's summary figures; by default the mean of each step figure over the epoch. */
  summary?(epoch: number, steps: readonly Metrics[]): Metrics;
  /** After a restore: brings what follows from the position alone (batch cyclers) to `step`. */
  restored?(at: { readonly epoch: number; readonly step: number }): void;
}

export interface LoopResult {
  readonly plan: StagePlan;
  readonly steps: number;
  /** Epochs begun, restored ones included (the last may be cut by max_steps or a stop). */
  readonly epochs: number;
  /** True when shouldStop() ended the loop; nothing was saved after the last finished epoch. */
  readonly stopped: boolean;
  /** The summary of the first epoch (kept across a resume); {} when none ran. */
  readonly first: Metrics;
  /** The summary of the last epoch that ran (after a resume, possibly the restored one); {} when none did. */
  readonly last: Metrics;
}

/** The step budget, warm-up included, of a program. */
export function planOf(budget: Budget): StagePlan {
  const planned = budget.epochs * budget.stepsPerEpoch;
  const atLeast = budget.minSteps ? Math.max(budget.minSteps, planned) : planned;
  const totalSteps = budget.maxSteps ? Math.min(budget.maxSteps, atLeast) : atLeast;
  return {
    // Enough epochs for the steps: more than asked for when minSteps adds some.
    epochs: budget.stepsPerEpoch > 0 ? Math.max(budget.epochs, Math.ceil(totalSteps / budget.stepsPerEpoch)) : budget.epochs,
    stepsPerEpoch: budget.stepsPerEpoch,
    totalSteps,
    warmupSteps: Math.min(totalSteps, Math.round(budget.warmupEpochs * budget.stepsPerEpoch)),
  };
}

/**
 * The training loop every stage runs on (pre-training, supervised and semi-supervised
 * fine-tuning), as MMEngine's EpochBasedTrainLoop and USB's AlgorithmBase.train:
 *
 *   restore the last epoch's checkpoint, if any;
 *   per epoch while steps remain: draw its batches; per batch while steps remain: yield to the
 *   event loop, stop if asked, step at the scheduled rate, report the step;
 *   then summarise the epoch, report it (a hook may stop the stage there by throwing), save.
 *
 * The learning rate is the program's schedule after a linear warm-up from `warmupLr`. Every
 * random draw of a step must come from the saved parts or from the step's position, so a
 * resumed loop takes exactly the steps an uninterrupted one would.
 */
export class TrainLoop<B> {
  readonly plan: StagePlan;

  constructor(
    private readonly program: TrainProgram<B>,
    private readonly hooks: StageHooks,
  ) {
    this.plan = planOf(program.budget);
  }

  /** The rate at a step: the linear warm-up towards the schedule, then the schedule. */
  lr(step: number, epoch: number): number {
    const { warmupSteps } = this.plan;
    const target = this.program.schedule(step, epoch, this.plan);
    const from = this.program.budget.warmupLr;
    return step < warmupSteps ? from + ((target - from) * step) / warmupSteps : target;
  }

  async run(): Promise<LoopResult> {
    const { program, hooks, plan } = this;
    if (plan.totalSteps === 0) return { plan, steps: 0, epochs: 0, stopped: false, first: {}, last: {} };
    let step = 0;
    let firstEpoch = 0;
    let first: Metrics = {};
    let last: Metrics = {};
    const restored = hooks.checkpoint ? await traced('checkpoint', () => restoreTraining(hooks.checkpoint!, program.parts)) : null;
    if (restored) {
      ({ step, epoch: firstEpoch } = restored);
      last = (restored.meta.last as Metrics | undefined) ?? {};
      first = (restored.meta.first as Metrics | undefined) ?? {};
      program.restored?.({ epoch: firstEpoch, step });
    }
    let epochs = firstEpoch;
    const interval = checkpointIntervalMs();
    let saved = Date.now();
    for (let epoch = firstEpoch; epoch < plan.epochs && step < plan.totalSteps; epoch++) {
      epochs++;
      const steps: Metrics[] = [];
      for (const batch of program.batches(epoch)) {
        if (step >= plan.totalSteps) break;
        await yieldToEventLoop();
        if (hooks.shouldStop?.()) return { plan, steps: step, epochs, stopped: true, first, last };
        const lr = this.lr(step, epoch);
        const { loss, ...figures } = program.step(batch, { step, epoch, lr });
        step++;
        // Every later step would be NaN too, and the cell would end at chance with exit 0.
        if (!Number.isFinite(loss)) throw new NonFiniteLoss(hooks.stage ?? 'training', loss, step, epoch, lr, plan);
        const metrics = { loss, lr, ...figures };
        steps.push(metrics);
        hooks.onStep?.({ step, epoch, metrics }, plan);
      }
      last = program.summary ? program.summary(epoch, steps) : meanOf(steps);
      if (epoch === 0) first = last;
      await hooks.onEpoch?.(epoch, last);
      // The last epoch is always saved (the stage's result for the stages after it); the others when
      // the interval has passed, so that stages of many short epochs do not spend their time saving.
      const final = epoch + 1 >= plan.epochs || step >= plan.totalSteps;
      if (hooks.checkpoint && (final || Date.now() - saved >= interval)) {
        await traced('checkpoint', () => saveTraining(hooks.checkpoint!, program.parts, { epoch: epoch + 1, step }, { first, last }));
        saved = Date.now();
      }
    }
    return { plan, steps: step, epochs, stopped: false, first, last };
  }
}

/** A stage stopped at its first non-finite loss: which stage, which step, and the likely cause. */
export class NonFiniteLoss extends Error {
  constructor(
    readonly stage: string,
    readonly loss: number,
    readonly step: number,
    readonly epoch: number,
    readonly lr: number,
    plan: StagePlan,
  ) {
    super(
      `${stage}: the loss is ${loss} at step ${step} of ${plan.totalSteps} (epoch ${epoch + 1}, learning rate ${lr}); stopped there. Likely cause: ${likelyCause(step, lr)}`,
    );
    this.name = 'NonFiniteLoss';
  }
}

function likelyCause(step: number, lr: number): string {
  if (!Number.isFinite(lr)) return 'the learning rate is not a finite number; check lr, min_lr, warmup_lr and the schedule';
  if (step === 1)
    return 'the very first step failed, so the weights or inputs it started from are not finite (a damaged pre-training or checkpoint, or broken images); delete the stage cache entry or checkpoint and run again';
  if (lr > 0.01) return `the learning rate ${lr} is high enough to diverge; lower lr (or raise warmup_epochs)`;
  return 'training diverged; lower lr, raise warmup_epochs, or check the data for broken images';
}

/** The variable that sets the least time between two epoch checkpoints of a stage, in seconds. */
export const CHECKPOINT_SECONDS_VARIABLE = 'SSFER_CHECKPOINT_SECONDS';

/**
 * The least time between two epoch checkpoints: SSFER_CHECKPOINT_SECONDS (0 saves every epoch),
 * 30 s by default. A resumed stage continues from the last saved epoch, whichever it is, and ends
 * with the same numbers; what a longer interval costs is the work redone after a crash.
 */
export function checkpointIntervalMs(): number {
  const text = process.env[CHECKPOINT_SECONDS_VARIABLE];
  if (text === undefined || text === '') return 30_000;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds < 0) throw new Error(`${CHECKPOINT_SECONDS_VARIABLE}=${text}: expected a number of seconds ≥ 0`);
  return seconds * 1000;
}

/** The mean of each figure over the steps that report it, summed in step order. */
export function meanOf(steps: readonly Metrics[]): Metrics {
  const sums: Record<string, number> = {};
  const counts: Record<string, number> = {};
  for (const m of steps) {
    for (const [k, v] of Object.entries(m)) {
      sums[k] = (sums[k] ?? 0) + v;
      counts[k] = (counts[k] ?? 0) + 1;
    }
  }
  return Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / counts[k]!]));
}

/** Lets the event loop run (Ctrl-C handlers, progress output) between training steps. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
