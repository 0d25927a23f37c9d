import path from 'node:path';
import type { FigureTree } from '../contracts/analysis.ts';
import type { Backbone, BackboneFactory } from '../contracts/backbone.ts';
import type { StagePlan, StepLog } from '../contracts/stages.ts';
import type { ContractOf, PluginContext, PluginSlot } from '../core/plugin.ts';
import type { ResolvedCell, ResolvedRecipe } from '../recipe/recipe.ts';
import type { CellConfig } from '../recipe/schema.ts';
import type { RunScope } from './scope.ts';

export interface CellHooks {
  /** How messages name this run of the cell (its id, and which seed when the run has several); default: its id. */
  name?: string;
  onStep(stage: string, log: StepLog, plan: StagePlan): void;
  shouldStop(): boolean;
  note(text: string): void;
  /** Where finished stages are kept across runs, keyed by stage hash; none: not kept. */
  stageCacheDir?: string;
  /** Where datasets keep decoded images across runs; none: decoded every run. */
  dataCacheDir?: string;
  /**
   * Where this cell keeps its per-epoch checkpoints, so a run killed in the middle of a cell
   * continues from the last finished epoch with `--resume`; none: no checkpoints.
   */
  checkpointDir?: string;
  /** Receives the evaluated weights (the EMA copy where that is what was evaluated) to keep them, before they are disposed. */
  keepModel?(
    model: Backbone,
    about: { backbone: PluginSlot; factory: BackboneFactory; metrics: CellMetrics; faceBoxes: { boxes: Float32Array; imageSize: number; note: string } },
  ): Promise<void>;
}

export interface CellMetrics {
  readonly id: string;
  /** The seed this run of the cell used (seed k of a cell is its seed + k); absent in older runs' metrics. */
  readonly seed?: number;
  /** Test accuracy of the evaluated weights (EMA where kept), in [0, 1]. */
  readonly accuracy: number;
  /** Test accuracy of the raw (non-EMA) weights. */
  readonly accuracy_raw: number;
  readonly per_class: Record<string, number | null>;
  readonly classes: readonly string[];
  readonly confusion: number[][];
  readonly test_count: number;
  readonly labeled_count: number;
  readonly unlabeled_count: number;
  readonly budget: string;
  readonly dataset: {
    name: string;
    display: string;
    stand_in: string | null;
    notes: readonly string[];
    /** A hash of what the loaded data depends on (the data cache key), and the folder it was read from (null: drawn). */
    key?: string;
    source?: string | null;
    /** Training images loaded (test_count: the test images), and the images' side in pixels. */
    train_count?: number;
    image_size?: number;
  };
  readonly stages: Record<'pretrain' | 'supervised' | 'semi', string>;
  /** Epochs planned and steps taken by the supervised stage. */
  readonly epochs: number;
  readonly steps: number;
  /** Per epoch of the semi-supervised stage: its summary figures (pseudo-label mask rate and accuracy, loss). */
  readonly semi_epochs: readonly Record<string, number>[];
  /** The tuner's choice and its validation accuracy; null when nothing was searched. */
  readonly tuning: { tuner: string; best: Record<string, number>; validation_accuracy: number; trials: number; validation_count: number } | null;
  /**
   * Whether each stage did its job: `<stage>_<figure>` as each stage reports itself (loss at the
   * first and last epoch; the semi stage's pseudo-label pass rate and accuracy), `<stage>_accuracy`
   * after each fine-tuning stage and `<stage>_gain` over the stage before.
   */
  readonly health: Record<string, number>;
  /** Each analysis's figures by its name (`evaluation.analyses`); absent when the cell runs none. */
  readonly analysis?: Readonly<Record<string, FigureTree>>;
  /** What a stage did not do that it should have, `<stage>: …`, and what an analysis found, `analysis <name>: …` (also in the table notes). */
  readonly stage_notes: readonly string[];
  readonly seconds: number;
}

export class Interrupted extends Error {
  constructor() {
    super('interrupted');
    this.name = 'Interrupted';
  }
}

/** What the steps of one cell share: where it runs, what it is, and how it creates its plugins. */
export interface CellContext {
  readonly scope: RunScope;
  readonly recipe: ResolvedRecipe;
  readonly cell: ResolvedCell;
  readonly config: CellConfig;
  /** This run's seed (seed k of the cell is the cell's seed + k); every stream of the cell is derived from it. */
  readonly seed: number;
  readonly hooks: CellHooks;
  /** What the cell's plugins are created with. */
  readonly plugins: Omit<PluginContext, 'resolve'>;
  /** Creates the plugin a slot of the cell's config chooses. */
  create<K extends string>(kind: K, slot: PluginSlot): ContractOf<K>;
}

/** What a cell's plugins are created with. */
export function pluginContext(recipe: ResolvedRecipe, cell: ResolvedCell): Omit<PluginContext, 'resolve'> {
  return { seed: cell.config.seed, scale: recipe.scale, recipeDir: path.dirname(recipe.file) };
}

export function cellContext(scope: RunScope, recipe: ResolvedRecipe, cell: ResolvedCell, hooks: CellHooks): CellContext {
  const config = cell.config;
  const plugins = pluginContext(recipe, cell);
  return { scope, recipe, cell, config, seed: config.seed, hooks, plugins, create: (kind, slot) => scope.registry.create(kind, slot, plugins) };
}
