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
  /** The epochs the loop runs: the stage's, or more where min_steps needs them (the last may be cut). */
  readonly epochs: number;
  readonly stepsPerEpoch: number;
  /** epochs × stepsPerEpoch, raised to min_steps where that is larger, then capped at max_steps. */
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
  /** The stage's name in messages (`supervised`, `pre-training`…). */
  readonly stage?: string;
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

/**
 * A stage of a cell: it takes the part of the cell's state it works on and returns its result,
 * reporting through the hooks (MMEngine's loops and USB's algorithms have the same split).
 */
export interface Stage<State, Result extends StageResult = StageResult> {
  readonly name: string;
  run(state: State, hooks: StageHooks): Promise<Result>;
}

export interface StageResult {
  /** One line for tables and logs: what the stage did. */
  readonly summary: string;
  /**
   * Figures that tell whether the stage did its job (its loss at the first and last epoch, the
   * share of pseudo-labels that passed…), named without the stage: the cell prefixes them.
   */
  readonly health?: Metrics;
  /**
   * What a reader of the results must know about how the stage ran, for the table notes: what it
   * did not do that it should have ("the loss did not fall"), a guard the recipe waived.
   */
  readonly notes?: readonly string[];
  /** True when the stage stopped early because shouldStop() said so. */
  readonly stopped?: boolean;
}

/**
 * What pre-training may depend on. It is shared by every cell whose pre-training key is the same
 * (src/pipeline/stage-keys.ts), so it sees the backbone and the dataset's pool, not a cell's data.
 */
export interface PretrainState {
  readonly backbone: BackboneFactory;
  /** The images to pre-train on, at the backbone's image size (drawn by the dataset). */
  pool(kind: 'faces' | 'generic', size: number): Promise<ImagePool>;
  readonly seed: number;
}

export interface PretrainResult extends StageResult {
  /**
   * Encoder weights for fine-tuning, named as the backbone's namedVariables() (the head may be
   * absent); null: fine-tuning starts from the seeded random initialisation. The caller owns
   * and disposes them.
   */
  readonly weights: NamedTensors | null;
  /** A picture of the stage (MAE: originals / masked / reconstructions), PNG bytes. */
  readonly picture?: Uint8Array;
}

/** `pretrain` plugins: stage 1. */
export type Pretrainer = Stage<PretrainState, PretrainResult>;

/** What the fine-tuning stages of a cell work on. */
export interface CellState {
  /** The model, trained in place; it is what gets evaluated afterwards. */
  readonly model: Backbone;
  /** A new model of the same shape that gradients never reach (EMA copies, teachers); the stage disposes what it builds. */
  buildCopy(): Backbone;
  readonly data: FerData;
  /** Training indices with labels. */
  readonly labeled: Int32Array;
  /**
   * How many labels the stage's budget rules count (the few-labels epochs): the cell's whole
   * labeled set, also in a tuning trial that trains on part of it, so that a trial trains as
   * many epochs as the final run. Absent: labeled.length.
   */
  readonly budgetLabels?: number;
  /** The label to train each training image with, indexed by training index (noisy where a sampler injected noise). */
  readonly labels: Int32Array;
  /** Training indices whose labels are hidden (their true labels in data.train.labels may be used only for reporting pseudo-label accuracy). */
  readonly unlabeled: Int32Array;
  /** A face box per training image (x1, y1, x2, y2 pixels), from the cell's face-boxes plugin. */
  readonly boxes: Float32Array;
  /** This stage's seed (the cell derives one per stage from the recipe's seed and the cell id). */
  readonly seed: number;
}

export interface FineTuneResult extends StageResult {
  /** A model holding the EMA of the weights the stage kept, or null; the caller disposes it. */
  readonly ema?: Backbone | null;
  /**
   * True when the stage changed the model's weights. An EMA an earlier stage kept then no longer
   * describes them and is dropped: the cell evaluates this stage's own EMA, or else the weights.
   * A stage that trained nothing (`ssl: none`, no unlabeled images) leaves it false.
   */
  readonly trained?: boolean;
  /** Steps taken and epochs planned, for the cell's metrics. */
  readonly steps?: number;
  readonly epochs?: number;
}

/**
 * A stage that trains the cell's model: supervised (`finetune` plugins, stage 2) or
 * semi-supervised (`ssl` plugins, stage 3) fine-tuning.
 */
export interface FineTuningStage extends Stage<CellState, FineTuneResult> {
  /**
   * Which weights of the stage before it this stage starts from: 'weights', the model as that
   * stage left it; 'ema', that stage's EMA when the cell evaluates EMAs (evaluation.use_ema) and
   * one was kept, which then replaces the weights. Either way, once this stage has trained
   * (`trained` in its result) the earlier EMA is no longer what the cell evaluates.
   */
  readonly startsFrom: 'weights' | 'ema';
}

declare module '../core/plugin.ts' {
  interface PluginContracts {
    pretrain: Pretrainer;
    finetune: FineTuningStage;
    ssl: FineTuningStage;
  }
}
