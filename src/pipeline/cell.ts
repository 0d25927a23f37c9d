import * as tf from '@tensorflow/tfjs';
import type { Backbone, BackboneFactory } from '../contracts/backbone.ts';
import type { Tuner } from '../contracts/tuner.ts';
import { checkSearchPaths, runTuning, validationSplit, withSettings, type CellTuning } from './tuning.ts';
import type { DatasetSource, FerData } from '../contracts/dataset.ts';
import type { CheckpointStore, Pretrainer, SemiSupervised } from '../contracts/stages.ts';
import type { Augmentation, FaceBoxSource, MixingStrategy, Sampler } from '../contracts/training.ts';
import type { PluginSlot } from '../core/plugin.ts';
import type { Kind } from '../core/kinds.ts';
import { deriveSeed, Rng } from '../core/rng.ts';
import type { JsonObject } from '../recipe/located.ts';
import type { ResolvedCell, ResolvedRecipe } from '../recipe/recipe.ts';
import { evaluate, type Evaluation } from './evaluate.ts';
import { hashOf, stageKeys } from './stage-keys.ts';
import { loadTensors, saveTensors } from '../train/checkpoint.ts';
import { writeAtomic } from './results.ts';
import fs from 'node:fs';
import path from 'node:path';
import { fileCheckpointStore } from '../train/resume.ts';
import { trainSupervised, type StepLog, type SupervisedHooks, type SupervisedOptions } from './supervised.ts';

export interface CellMetrics {
  readonly id: string;
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
  readonly dataset: { name: string; display: string; stand_in: string | null; notes: readonly string[] };
  readonly stages: Record<'pretrain' | 'supervised' | 'semi', string>;
  readonly epochs: number;
  readonly steps: number;
  /** Per epoch of the semi-supervised stage: pseudo-label mask rate and accuracy, losses. */
  readonly semi_epochs: readonly Record<string, number>[];
  /** The tuner's choice and its validation accuracy; null when nothing was searched. */
  readonly tuning: { tuner: string; best: Record<string, number>; validation_accuracy: number; trials: number; validation_count: number } | null;
  readonly seconds: number;
}

export interface CellHooks {
  onStep(stage: string, log: StepLog, info: { epochs: number; stepsPerEpoch: number; totalSteps: number }): void;
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

// Data is drawn (or decoded) once per process for all cells that ask for the same thing.
const dataCache = new Map<string, Promise<FerData>>();
type PretrainOutput = Awaited<ReturnType<Pretrainer['run']>>;
const pretrainCache = new Map<string, Promise<PretrainOutput>>();

/** The cell's dataset slot with its folder from `data.roots` when the slot does not name one. */
function withDatasetRoot(config: JsonObject): PluginSlot {
  const slot = slotAt(config, 'data.dataset');
  const root = ((config.data as JsonObject).roots as Record<string, string> | undefined)?.[slot.use];
  return root && !slot.root ? { ...slot, root } : slot;
}

function slotAt(config: JsonObject, dotted: string): PluginSlot {
  let cur: unknown = config;
  for (const p of dotted.split('.')) cur = (cur as JsonObject)[p];
  return cur as PluginSlot;
}

/** Runs one cell's stages and evaluates it on the test split. */
export type CellStep = { stage: string; step: number; loss: number; [metric: string]: number | string | undefined };

export interface CellOutput {
  readonly metrics: CellMetrics;
  /** Every training step of the supervised and semi-supervised stages. */
  readonly log: CellStep[];
  /** The pre-training picture (MAE: originals / masked / reconstructions), PNG bytes. */
  readonly pretrainPicture?: Uint8Array;
  /** Every setting the tuner scored, when it searched. */
  readonly tuning?: CellTuning;
}

export async function runCell(recipe: ResolvedRecipe, cell: ResolvedCell, hooks: CellHooks): Promise<CellOutput> {
  const started = Date.now();
  const config = cell.config;
  const seed = config.seed as number;
  const ctx = { seed, scale: recipe.scale, recipeDir: recipe.file.replace(/[/\\][^/\\]*$/, '') };
  const create = <T>(kind: Kind, dotted: string) => recipe.registry.create<T>(kind, slotAt(config, dotted), ctx);
  const isPlanned = (kind: Kind, dotted: string) => recipe.registry.get(kind, slotAt(config, dotted).use).status === 'planned';

  // A component that cannot run yet fails the cell before any work is done.
  for (const [kind, dotted] of [['face-boxes', 'data.boxes'], ['sampler', 'data.labels']] as const) {
    if (isPlanned(kind, dotted)) create(kind, dotted);
  }
  const tuner = create<Tuner>('tuner', 'pipeline.tune');
  checkSearchPaths(config, tuner);
  const backbone = create<BackboneFactory>('backbone', 'model.backbone');
  const imageSize = backbone.imageSize;
  const size = (config.data as JsonObject).size as { train: number | null; test: number | null };
  const datasetSlot = withDatasetRoot(config);
  const dataKey = hashOf({ dataset: datasetSlot as never, size: size as never, imageSize, seed });
  let pending = dataCache.get(dataKey);
  if (!pending) {
    const source = recipe.registry.create<DatasetSource>('dataset', datasetSlot, ctx);
    pending = source.load({ imageSize, trainSize: size.train, testSize: size.test, ...(hooks.dataCacheDir ? { cacheDir: hooks.dataCacheDir } : {}) });
    dataCache.set(dataKey, pending);
    pending.catch(() => dataCache.delete(dataKey));
  }
  const data = await pending;
  const numClasses = data.classes.length;

  const sampler = create<Sampler>('sampler', 'data.labels');
  const split = sampler.split(data.train.labels, numClasses, Rng.derive(seed, 'labels', dataKey, hashOf(slotAt(config, 'data.labels') as never)), {
    ...(data.train.folds ? { folds: data.train.folds } : {}),
  });
  const trainLabels = split.labels ?? data.train.labels;
  const faceBoxes = await create<FaceBoxSource>('face-boxes', 'data.boxes').boxes(data.train, { imageSize, note: hooks.note, ...(hooks.dataCacheDir ? { cacheDir: hooks.dataCacheDir } : {}) });
  const boxes = faceBoxes.boxes;

  const stages = { pretrain: '', supervised: '', semi: '' };
  const pretrainUse = slotAt(config, 'pipeline.pretrain').use;
  let pretrained: PretrainOutput | null = null;
  if (isPlanned('pretrain', 'pipeline.pretrain')) {
    stages.pretrain = `skipped: ${pretrainUse} is not implemented yet`;
  } else {
    // Cells with the same pre-training key share one pre-training (computed once per process).
    const key = stageKeys(config).pretrain;
    let shared = pretrainCache.get(key);
    if (!shared) {
      const run = () =>
        create<Pretrainer>('pretrain', 'pipeline.pretrain').run({
          backbone,
          pool: (kind, n) => recipe.registry.create<DatasetSource>('dataset', datasetSlot, ctx).pool(kind, n, imageSize),
          seed: deriveSeed(seed, 'pretrain'),
          hooks: {
            onStep: (l, info) => hooks.onStep('pretrain', l, info),
            shouldStop: hooks.shouldStop,
            // Pre-training is shared across cells and runs, so its checkpoint lives beside its cache entry.
            ...(hooks.stageCacheDir ? { checkpoint: announced(fileCheckpointStore(path.join(hooks.stageCacheDir, `pretrain-${key}.ckpt`)), 'pre-training', hooks.note) } : {}),
          },
        });
      shared = hooks.stageCacheDir ? cachedPretrain(path.join(hooks.stageCacheDir, `pretrain-${key}`), run, hooks.note) : run();
      // With the on-disk cache, memory holds one pre-training at a time (another one is read back
      // from disk when a later cell needs it), so a table of many pre-trainings stays flat.
      if (hooks.stageCacheDir) for (const other of [...pretrainCache.keys()]) releasePretrain(other);
      pretrainCache.set(key, shared);
      shared.catch(() => pretrainCache.delete(key));
    }
    pretrained = await shared;
    if (pretrained.stopped) {
      pretrainCache.delete(key);
      throw new Interrupted();
    }
    stages.pretrain = pretrained.summary;
  }

  const modelSeed = deriveSeed(seed, 'model');
  // Every training of this cell (tuning trials and the final one) starts from the pre-trained
  // encoder with a new classifier: the classifier is new for every dataset.
  const initialModel = () => {
    const m = backbone.build(numClasses, modelSeed);
    if (pretrained?.weights) m.loadState(pretrained.weights, { allowMissing: ['head.'], ignoreUnexpected: true });
    return m;
  };
  const evalOpts = config.evaluation as { batch_size: number; use_ema: boolean };
  const supervisedStage = async (target: Backbone, settings: JsonObject, labeled: Int32Array, stageHooks: SupervisedHooks) => {
    const mixing = recipe.registry.create<MixingStrategy>('mixing', slotAt(settings, 'pipeline.supervised.mixing'), ctx);
    const augment = recipe.registry.create<Augmentation>('augment', slotAt(settings, 'pipeline.supervised.augment'), ctx);
    const result = await trainSupervised({
      model: target,
      buildCopy: () => backbone.build(numClasses, modelSeed, { trainable: false }),
      data,
      labeled,
      labels: trainLabels,
      boxes,
      options: (settings.pipeline as JsonObject).supervised as unknown as SupervisedOptions,
      mixing,
      augment,
      seed: deriveSeed(seed, cell.id),
      hooks: stageHooks,
    });
    return { ...result, mixing: mixing.name };
  };

  // Stage 2's settings, after the tuner's search when the recipe asks for one.
  let tuning: CellTuning | null = null;
  let settings = config;
  if (tuner.search.length > 0) {
    const parts = validationSplit(split.labeled, trainLabels, numClasses, tuner.validationFraction, Rng.derive(seed, 'tune', 'validation'));
    const found = await runTuning({
      tuner,
      seed: deriveSeed(seed, cell.id),
      memoFile: hooks.checkpointDir ? path.join(hooks.checkpointDir, 'tuning.json') : null,
      score: async (params) => {
        const trial = withSettings(config, tuner.trialMaxSteps === null ? params : { ...params, 'pipeline.supervised.max_steps': tuner.trialMaxSteps });
        const candidate = initialModel();
        let averaged: Backbone | null = null;
        try {
          const r = await supervisedStage(candidate, trial, parts.train, { onStep: (l, info) => hooks.onStep('tune', l, info), shouldStop: hooks.shouldStop });
          averaged = r.ema;
          if (r.stopped) throw new Interrupted();
          const scored = evalOpts.use_ema && averaged ? averaged : candidate;
          return evaluate(scored, data.train, imageSize, numClasses, evalOpts.batch_size, parts.validation).accuracy;
        } finally {
          candidate.dispose();
          averaged?.dispose();
        }
      },
      onTrial: (t) => hooks.note(`  ${cell.id}: ${tuner.name} trial ${t.index + 1} (iteration ${t.iteration}) ${formatParams(t.params)} → validation ${(t.score * 100).toFixed(2)}%`),
    });
    settings = withSettings(config, found.best);
    tuning = { ...found, tuner: tuner.name, validation_count: parts.validation.length, train_count: parts.train.length };
  }

  const model = initialModel();
  let ema: Backbone | null = null;
  const log: CellStep[] = [];
  const semiEpochs: Record<string, number>[] = [];
  const checkpoint = (stage: string) =>
    hooks.checkpointDir ? { checkpoint: announced(cellCheckpoint(path.join(hooks.checkpointDir, `${stage}.ckpt`), log, semiEpochs), `${cell.id}: ${stage}`, hooks.note) } : {};
  try {
    const result = await supervisedStage(model, settings, split.labeled, {
      onStep: (l, info) => {
        log.push({ ...l, stage: 'supervised' });
        hooks.onStep('supervised', l, info);
      },
      shouldStop: hooks.shouldStop,
      ...checkpoint('supervised'),
    });
    ema = result.ema;
    if (result.stopped) throw new Interrupted();
    stages.supervised = `${result.epochs} epochs, ${result.steps} steps, ${result.mixing}${tuning ? `, tuned: ${formatParams(tuning.best)}` : ''}`;

    const semiUse = slotAt(config, 'pipeline.semi').use;
    if (isPlanned('ssl', 'pipeline.semi')) {
      stages.semi = `skipped: ${semiUse} is not implemented yet`;
    } else {
      const useEma = (config.evaluation as { use_ema: boolean }).use_ema;
      if (semiUse !== 'none' && ema && useEma) {
        // The supervised stage's result is its weight EMA: the semi-supervised stage starts there.
        const state = ema.state();
        model.loadState(state);
        tf.dispose(Object.values(state));
        ema.dispose();
        ema = null;
      }
      const semi = await create<SemiSupervised>('ssl', 'pipeline.semi').run({
        model,
        buildCopy: () => backbone.build(numClasses, modelSeed, { trainable: false }),
        data,
        labeled: split.labeled,
        labels: trainLabels,
        unlabeled: split.unlabeled,
        seed: deriveSeed(seed, cell.id, 'semi'),
        hooks: {
          onStep: (l, info) => {
            log.push({ ...l, stage: 'semi' });
            hooks.onStep('semi', l, info);
          },
          onEpoch: (epoch, m) => semiEpochs.push({ epoch, ...m }),
          shouldStop: hooks.shouldStop,
          ...checkpoint('semi'),
        },
      });
      if (semi.stopped) throw new Interrupted();
      stages.semi = semi.summary;
    }

    // A k-fold sampler evaluates on its held-out fold of the training set, not on the test split.
    const testSplit = split.heldOut ? data.train : data.test;
    const raw = evaluate(model, testSplit, imageSize, numClasses, evalOpts.batch_size, split.heldOut);
    const final: Evaluation = evalOpts.use_ema && ema ? evaluate(ema, testSplit, imageSize, numClasses, evalOpts.batch_size, split.heldOut) : raw;
    const metrics: CellMetrics = {
      id: cell.id,
      accuracy: final.accuracy,
      accuracy_raw: raw.accuracy,
      per_class: Object.fromEntries(data.classes.map((c, i) => [c, final.perClass[i] ?? null])),
      classes: data.classes,
      confusion: final.confusion,
      test_count: final.count,
      labeled_count: split.labeled.length,
      unlabeled_count: split.unlabeled.length,
      budget: sampler.budget,
      dataset: { name: data.name, display: data.displayName, stand_in: data.standIn ?? null, notes: [...(data.notes ?? []), faceBoxes.note] },
      stages,
      epochs: result.epochs,
      steps: result.steps,
      semi_epochs: semiEpochs,
      tuning: tuning && { tuner: tuning.tuner, best: tuning.best, validation_accuracy: tuning.bestScore, trials: tuning.trials.length, validation_count: tuning.validation_count },
      seconds: (Date.now() - started) / 1000,
    };
    return { metrics, log, ...(pretrained?.picture ? { pretrainPicture: pretrained.picture } : {}), ...(tuning ? { tuning } : {}) };
  } finally {
    model.dispose();
    ema?.dispose();
  }
}

function releasePretrain(key: string): void {
  const entry = pretrainCache.get(key);
  pretrainCache.delete(key);
  // Cells run one after another: a cell that used these weights has copied them into its model.
  entry?.then((out) => tf.dispose(Object.values(out.weights ?? {}))).catch(() => {});
}

/**
 * A pre-training from the on-disk stage cache, or run and stored there. Entries are written
 * atomically (weights file last), so a crash never leaves an entry that looks complete.
 */
async function cachedPretrain(base: string, run: () => Promise<PretrainOutput>, note: (t: string) => void): Promise<PretrainOutput> {
  const weightsFile = `${base}.weights`;
  if (fs.existsSync(weightsFile)) {
    const loaded = await loadTensors(weightsFile);
    const picture = fs.existsSync(`${base}.png`) ? new Uint8Array(fs.readFileSync(`${base}.png`)) : undefined;
    note(`ssfer: pre-training reused from the stage cache (${path.basename(base)})`);
    return { weights: loaded.tensors, summary: `${String(loaded.meta.summary ?? 'pre-training')} (from the stage cache)`, ...(picture ? { picture } : {}) };
  }
  const out = await run();
  if (out.weights && !out.stopped) {
    if (out.picture) writeAtomic(`${base}.png`, Buffer.from(out.picture));
    await saveTensors(weightsFile, out.weights, { summary: out.summary });
    fs.rmSync(`${base}.ckpt`, { force: true });
  }
  return out;
}

function formatParams(params: Record<string, number>): string {
  return Object.entries(params)
    .map(([p, v]) => `${p.split('.').pop()} ${v.toPrecision(3)}`)
    .join(', ');
}

/** A checkpoint store that says when a stage continues from it. */
function announced(store: CheckpointStore, what: string, note: (t: string) => void): CheckpointStore {
  return {
    async load() {
      const saved = await store.load();
      if (saved) note(`ssfer: ${what} continues from its checkpoint after epoch ${saved.epoch} (step ${saved.step})`);
      return saved;
    },
    save: (state) => store.save(state),
  };
}

/**
 * A stage checkpoint of this cell that also carries the cell's step log and per-epoch figures
 * so far, so a resumed cell writes the same log and curves as an uninterrupted one.
 */
function cellCheckpoint(file: string, log: CellStep[], semiEpochs: Record<string, number>[]): CheckpointStore {
  const store = fileCheckpointStore(file);
  return {
    async load() {
      const saved = await store.load();
      if (!saved) return null;
      const { cell, ...meta } = saved.meta as { cell?: { log: CellStep[]; semiEpochs: Record<string, number>[] } };
      // Element by element: a long run's log is too long to spread into one call's arguments.
      log.length = 0;
      for (const entry of cell?.log ?? []) log.push(entry);
      semiEpochs.length = 0;
      for (const entry of cell?.semiEpochs ?? []) semiEpochs.push(entry);
      return { ...saved, meta };
    },
    save: (state) => store.save({ ...state, meta: { ...state.meta, cell: { log, semiEpochs } } }),
  };
}


