import path from 'node:path';
import type { StagePlan, StepLog } from '../contracts/stages.ts';
import type { ContractOf, PluginContext, PluginSlot } from '../core/plugin.ts';
import type { ResolvedCell, ResolvedRecipe } from '../recipe/recipe.ts';
import type { CellConfig } from '../recipe/schema.ts';
import type { RunScope } from './scope.ts';

export interface CellHooks {
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
  /** The recipe's seed; every stream of the cell is derived from it. */
  readonly seed: number;
  readonly hooks: CellHooks;
  /** What the cell's plugins are created with. */
  readonly plugins: Omit<PluginContext, 'resolve'>;
  /** Creates the plugin a slot of the cell's config chooses. */
  create<K extends string>(kind: K, slot: PluginSlot): ContractOf<K>;
}

export function cellContext(scope: RunScope, recipe: ResolvedRecipe, cell: ResolvedCell, hooks: CellHooks): CellContext {
  const config = cell.config;
  const plugins = { seed: config.seed, scale: recipe.scale, recipeDir: path.dirname(recipe.file) };
  return { scope, recipe, cell, config, seed: config.seed, hooks, plugins, create: (kind, slot) => scope.registry.create(kind, slot, plugins) };
}
