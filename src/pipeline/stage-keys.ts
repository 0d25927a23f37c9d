import { hashOf } from '../core/json.ts';
import type { PluginContext } from '../core/plugin.ts';
import type { PluginRegistry } from '../core/registry.ts';
import type { CellConfig } from '../recipe/schema.ts';
import { datasetSlot } from './cell-data.ts';

/** Bumped when a change to the training code makes earlier cached stage outputs invalid. */
export const STAGE_CODE_VERSION = 2;

export const STAGES = ['pretrain', 'supervised', 'semi'] as const;
export type Stage = (typeof STAGES)[number];

/**
 * The key of each stage's output: a hash of everything the stage depends on. Cells with the same
 * key share that stage (pre-training in particular is usually shared by a whole table). Pre-training
 * reads the dataset's image pool, which depends on what `poolKey` says (how the pool is drawn),
 * not on which dataset, class setting, task or folder a cell uses.
 */
export function stageKeys(config: CellConfig, poolKey: unknown): Record<Stage, string> {
  const { model, pipeline } = config;
  const pretrain = hashOf({
    stage: 'pretrain',
    code: STAGE_CODE_VERSION,
    seed: config.seed,
    backbone: model.backbone,
    pretrain: pipeline.pretrain,
    pool: poolKey,
  });
  const supervised = hashOf({
    stage: 'supervised',
    after: pretrain,
    data: config.data,
    supervised: pipeline.supervised,
    tune: pipeline.tune,
    seed: config.seed,
  });
  const semi = hashOf({ stage: 'semi', after: supervised, semi: pipeline.semi });
  return { pretrain, supervised, semi };
}

/** A cell's stage keys, its dataset asked for its pool key. */
export function cellStageKeys(registry: PluginRegistry, config: CellConfig, ctx: Omit<PluginContext, 'resolve'>): Record<Stage, string> {
  return stageKeys(config, registry.create('dataset', datasetSlot(config), ctx).poolKey());
}
