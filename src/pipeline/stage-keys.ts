import { createHash } from 'node:crypto';
import type { CellConfig } from '../recipe/schema.ts';

/** Bumped when a change to the training code makes earlier cached stage outputs invalid. */
export const STAGE_CODE_VERSION = 1;

export const STAGES = ['pretrain', 'supervised', 'semi'] as const;
export type Stage = (typeof STAGES)[number];

function canonical(v: unknown): string {
  if (v === undefined) return 'null';
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** A short hash of a JSON value that does not depend on the order of its keys. */
export function hashOf(v: unknown): string {
  return createHash('sha256').update(canonical(v)).digest('hex').slice(0, 16);
}

/**
 * The key of each stage's output: a hash of everything the stage depends on. Cells with the same
 * key share that stage (pre-training in particular is usually shared by a whole table).
 */
export function stageKeys(config: CellConfig): Record<Stage, string> {
  const { model, pipeline } = config;
  // Pre-training reads the recipe's image pool, which depends on how the dataset draws images
  // but not on which dataset, class setting, task or folder a cell uses: cells of every column
  // share it. Real datasets draw their pool with their stand-in's knobs, the synthetic set with its own.
  const dataset = config.data.dataset;
  const { use: _use, classes: _classes, root: _root, ...rest } = dataset;
  const poolSpec = 'stand_in' in dataset ? { stand_in: dataset.stand_in } : rest;
  const pretrain = hashOf({ stage: 'pretrain', code: STAGE_CODE_VERSION, seed: config.seed, backbone: model.backbone, pretrain: pipeline.pretrain, pool: poolSpec });
  const supervised = hashOf({ stage: 'supervised', after: pretrain, data: config.data, supervised: pipeline.supervised, tune: pipeline.tune, seed: config.seed });
  const semi = hashOf({ stage: 'semi', after: supervised, semi: pipeline.semi });
  return { pretrain, supervised, semi };
}
