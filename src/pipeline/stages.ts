import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Backbone } from '../contracts/backbone.ts';
import type { CellState, CheckpointStore, FineTuneResult, Metrics, StageHooks, StepLog } from '../contracts/stages.ts';
import { deriveSeed } from '../core/rng.ts';
import type { PluginSlot } from '../core/plugin.ts';
import type { CellConfig } from '../recipe/schema.ts';
import { announced, fileCheckpointStore } from '../train/resume.ts';
import { Interrupted, type CellContext } from './cell-context.ts';

/** A step of the cell's log: the stage's step log and which stage it was. */
export type CellStep = StepLog & { readonly stage: string };

/** A stage's epoch summaries, each with its epoch. */
export type EpochFigures = Readonly<Record<string, number>>;

/**
 * The fine-tuning stages of a cell, in order: which kind of plugin runs each, the config slot that
 * chooses it, and its seed. A stage's seed is the run's seed's, not the cell's: every cell of one
 * seed draws the same batches, crops and masks where its settings are the same (common random
 * numbers), so two rows of a table differ by what their settings change and a paired difference
 * over seeds measures that, not the luck of two unrelated draws.
 */
export const FINE_TUNING_STAGES = [
  {
    name: 'supervised',
    kind: 'finetune',
    slot: (config: CellConfig): PluginSlot => config.pipeline.supervised,
    seed: (seed: number) => deriveSeed(seed, 'supervised'),
  },
  {
    name: 'semi',
    kind: 'ssl',
    slot: (config: CellConfig): PluginSlot => config.pipeline.semi,
    seed: (seed: number) => deriveSeed(seed, 'semi'),
  },
] as const;

export type FineTuningStageName = (typeof FINE_TUNING_STAGES)[number]['name'];

/** What the cell's fine-tuning left: the weight EMA to evaluate (if one was kept), the log, and each stage's result. */
export interface FineTuned {
  readonly ema: Backbone | null;
  readonly log: readonly CellStep[];
  /** Per stage, its epoch summaries `{ epoch, ...figures }`. */
  readonly epochs: Readonly<Record<string, readonly EpochFigures[]>>;
  readonly results: Readonly<Record<FineTuningStageName, FineTuneResult>>;
}

/**
 * Runs the fine-tuning stages on `model` in order. Each stage starts from what its plugin
 * declares (`startsFrom`): the weights as the stage before left them, or that stage's EMA when the
 * cell evaluates EMAs; after a stage that trained, only its own EMA (if any) is kept. Every stage saves a checkpoint after each epoch that also carries the cell's
 * log so far, so a resumed cell writes the same log as an uninterrupted one. The returned EMA is
 * the caller's to dispose (also when this throws: `owned` holds it until then).
 */
export async function fineTune(
  c: CellContext,
  settings: CellConfig,
  state: Omit<CellState, 'seed'>,
  owned: { ema: Backbone | null },
  afterStage?: (stage: FineTuningStageName, ema: Backbone | null) => void,
): Promise<FineTuned> {
  const log: CellStep[] = [];
  const epochs: Record<string, EpochFigures[]> = {};
  const results: Partial<Record<FineTuningStageName, FineTuneResult>> = {};
  for (const stage of FINE_TUNING_STAGES) {
    const plugin = c.create(stage.kind, stage.slot(settings));
    if (plugin.startsFrom === 'ema' && owned.ema && c.config.evaluation.use_ema) {
      const weights = owned.ema.state();
      state.model.loadState(weights);
      tf.dispose(Object.values(weights));
      owned.ema.dispose();
      owned.ema = null;
    }
    const figures: EpochFigures[] = [];
    epochs[stage.name] = figures;
    const hooks: StageHooks = {
      stage: `${c.hooks.name ?? c.cell.id}: ${stage.name}`,
      onStep: (l, plan) => {
        log.push({ stage: stage.name, ...l });
        c.hooks.onStep(stage.name, l, plan);
      },
      onEpoch: (epoch, m) => void figures.push({ epoch, ...m }),
      shouldStop: c.hooks.shouldStop,
      ...(c.hooks.checkpointDir
        ? {
            checkpoint: announced(
              cellCheckpoint(path.join(c.hooks.checkpointDir, `${stage.name}.ckpt`), log, epochs, c.hooks.note),
              `${c.hooks.name ?? c.cell.id}: ${stage.name}`,
              c.hooks.note,
            ),
          }
        : {}),
    };
    const result = await plugin.run({ ...state, seed: stage.seed(c.seed) }, hooks);
    // The weights this stage trained are what an earlier stage's EMA no longer describes: the cell
    // evaluates this stage's EMA, or its weights (the EMA teacher copies itself into them).
    if (result.ema || result.trained) {
      owned.ema?.dispose();
      owned.ema = result.ema ?? null;
    }
    if (result.stopped) throw new Interrupted();
    results[stage.name] = result;
    afterStage?.(stage.name, owned.ema);
  }
  return { ema: owned.ema, log, epochs, results: results as FineTuned['results'] };
}

/**
 * A stage checkpoint of this cell that also carries the cell's step log and per-epoch figures
 * so far, so a resumed cell writes the same log and curves as an uninterrupted one.
 */
function cellCheckpoint(file: string, log: CellStep[], epochs: Record<string, EpochFigures[]>, note: (text: string) => void): CheckpointStore {
  const store = fileCheckpointStore(file, note);
  return {
    async load() {
      const saved = await store.load();
      if (!saved) return null;
      const { cell, ...meta } = saved.meta as { cell?: { log: CellStep[]; epochs: Record<string, Metrics[]> } };
      // Element by element: a long run's log is too long to spread into one call's arguments.
      log.length = 0;
      for (const entry of cell?.log ?? []) log.push(entry);
      for (const [stage, list] of Object.entries(cell?.epochs ?? {})) {
        const kept = (epochs[stage] ??= []);
        kept.length = 0;
        for (const entry of list) kept.push(entry);
      }
      return { ...saved, meta };
    },
    save: (state) => store.save({ ...state, meta: { ...state.meta, cell: { log, epochs } } }),
  };
}
