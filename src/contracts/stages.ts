import type { Backbone, BackboneFactory, NamedTensors } from './backbone.ts';
import type { FerData, ImagePool } from './dataset.ts';

/** Figures by name: the loss, the learning rate, and whatever else a stage reports (a mask rate, a mean κ…). */
export type Metrics = Readonly<Record<string, number>>;

/** What a training loop reports after each step (progress bars, tracking, the cell's log). */
export interface StepLog {
  /** Optimisation steps taken, this one included. */
  readonly step: number;
  /** The epoch the step belongs to, from 0. */
  readonly epoch: number;
  /** `loss` and `lr` first, then the stage's own figures. */
  readonly metrics: Metrics;
}

/** A training loop's budget, as the loop works it out from the stage's options. */
export interface StagePlan {
  readonly epochs: number;
  readonly stepsPerEpoch: number;
  /** epochs × stepsPerEpoch, or max_steps when that is smaller. */
  readonly totalSteps: number;
  /** Steps of linear warm-up at the start. */
  readonly warmupSteps: number;
}

/** A training loop's state after an epoch: enough to continue exactly where it stopped. */
export interface SavedTraining {
  /** Epochs completed. */
  readonly epoch: number;
  /** Optimisation steps taken. */
  readonly step: number;
  /** JSON-serialisable loop state (RNG state, running figures). */
  readonly meta: Record<string, unknown>;
  /** Weights, optimizer moments, EMA copies… by name. */
  readonly tensors: NamedTensors;
}

/**
 * Where a stage keeps its checkpoint (one per stage and cell). `save` replaces the previous one
 * atomically; the tensors stay the caller's. `load` hands over tensors the caller disposes.
 */
export interface CheckpointStore {
  load(): Promise<SavedTraining | null>;
  save(state: SavedTraining): Promise<void>;
}

/** How a training stage reports and is controlled: the one set of hooks every stage and its loop take. */
export interface StageHooks {
  /** After each step (progress bars, tracking, the cell's log). */
  onStep?(log: StepLog, plan: StagePlan): void;
  /**
   * After each epoch with that epoch's summary figures, before the epoch's checkpoint is saved.
   * Throwing stops the stage with that error (a guard against a diverged or degenerate run), and
   * the epoch is not saved.
   */
  onEpoch?(epoch: number, metrics: Metrics): void | Promise<void>;
  /** True when the run should stop before the next step (Ctrl-C). */
  shouldStop?(): boolean;
  /** Present when the stage should save a checkpoint after each epoch and resume from it. */
  checkpoint?: CheckpointStore;
}

export interface StageResult {
  /** One line for tables and logs: what the stage did. */
  readonly summary: string;
  /** True when the stage stopped early because shouldStop() said so. */
  readonly stopped?: boolean;
}

export interface PretrainContext {
  readonly backbone: BackboneFactory;
  /** The images to pre-train on, at the backbone's image size (loaded by the pipeline). */
  pool(kind: 'faces' | 'generic', size: number): Promise<ImagePool>;
  readonly seed: number;
  readonly hooks: StageHooks;
}

/** `pretrain` plugins: stage 1. */
export interface Pretrainer {
  readonly name: string;
  run(ctx: PretrainContext): Promise<
    StageResult & {
      /**
       * Encoder weights for fine-tuning, named as the backbone's namedVariables() (the head
       * may be absent); null: fine-tuning starts from the seeded random initialisation.
       * The caller owns and disposes them.
       */
      weights: NamedTensors | null;
      /** A picture of the stage (MAE: originals / masked / reconstructions), PNG bytes. */
      picture?: Uint8Array;
    }
  >;
}

export interface SemiContext {
  /** The student, trained in place; it is what gets evaluated afterwards. */
  readonly model: Backbone;
  /** A new model of the same shape (for the teacher); the stage disposes what it builds. */
  buildCopy(): Backbone;
  readonly data: FerData;
  /** Training indices with labels. */
  readonly labeled: Int32Array;
  /** The label to train each training image with, indexed by training index (noisy where a sampler injected noise). */
  readonly labels: Int32Array;
  /** Training indices whose labels are hidden (their true labels in data.train.labels may be used only for reporting pseudo-label accuracy). */
  readonly unlabeled: Int32Array;
  readonly seed: number;
  readonly hooks: StageHooks;
}

/** `ssl` plugins: stage 3, semi-supervised fine-tuning of the supervised model. */
export interface SemiSupervised {
  readonly name: string;
  run(ctx: SemiContext): Promise<StageResult>;
}

declare module '../core/plugin.ts' {
  interface PluginContracts {
    pretrain: Pretrainer;
    ssl: SemiSupervised;
  }
}
