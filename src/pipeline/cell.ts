import type { Backbone } from '../contracts/backbone.ts';
import type { FerData } from '../contracts/dataset.ts';
import { deriveSeed } from '../core/rng.ts';
import type { ResolvedCell, ResolvedRecipe } from '../recipe/recipe.ts';
import { cellContext, type CellHooks, type CellMetrics } from './cell-context.ts';
import { datasetPicture, faceBoxes, loadData, splitLabels, type CellData, type CellSplit } from './cell-data.ts';
import { traced } from '../core/trace.ts';
import { linearProbeAccuracy } from './baseline.ts';
import { analyse, evaluate, type Evaluation } from './evaluate.ts';
import { mcnemarExact } from '../report/stats.ts';
import type { AnalysisFile, FigureTree } from '../contracts/analysis.ts';
import { sharedPretraining } from './pretraining.ts';
import type { RunScope } from './scope.ts';
import { FINE_TUNING_STAGES, fineTune, type CellStep, type FineTuned } from './stages.ts';
import type { StageResult } from '../contracts/stages.ts';
import { checkSearchPaths, formatParams, tuneSupervised, type CellTuning } from './tuning.ts';

export { Interrupted, type CellHooks, type CellMetrics } from './cell-context.ts';
export type { CellStep } from './stages.ts';

export interface CellOutput {
  readonly metrics: CellMetrics;
  /** Every training step of the supervised and semi-supervised stages. */
  readonly log: readonly CellStep[];
  /** The pre-training picture (MAE: originals / masked / reconstructions), PNG bytes. */
  readonly pretrainPicture?: Uint8Array;
  /** The dataset's picture at the cell's image size (the synthetic faces: people in every expression), PNG bytes. */
  readonly dataPicture?: Uint8Array;
  /** Every setting the tuner scored, when it searched. */
  readonly tuning?: CellTuning;
  /** What the analyses write into the cell's folder (pictures, JSON). */
  readonly files?: readonly AnalysisFile[];
}

/**
 * One cell: its data, label split and face boxes, the shared pre-training, the tuner's search,
 * the fine-tuning stages, and the evaluation on the test split.
 */
export async function runCell(scope: RunScope, recipe: ResolvedRecipe, cell: ResolvedCell, hooks: CellHooks): Promise<CellOutput> {
  const started = Date.now();
  const c = cellContext(scope, recipe, cell, hooks);
  const tuner = c.create('tuner', c.config.pipeline.tune);
  checkSearchPaths(c.config, tuner);
  const backbone = c.create('backbone', c.config.model.backbone);
  const analyses = c.config.evaluation.analyses.map((slot) => c.create('analysis', slot));
  const loaded = await loadData(c, backbone.imageSize);
  const { data } = loaded;
  const split = splitLabels(c, loaded);
  const { boxes, note: boxesNote } = await faceBoxes(c, data, backbone.imageSize);
  const pretrained = await sharedPretraining(c, backbone);

  // Every training of this cell (tuning trials and the final one) starts from the pre-trained
  // encoder with a new classifier: the classifier is new for every dataset.
  const modelSeed = deriveSeed(c.seed, 'model');
  const buildCopy = () => backbone.build(data.classes.length, modelSeed, { trainable: false });
  const initialModel = () => {
    const m = backbone.build(data.classes.length, modelSeed);
    if (pretrained.weights) m.loadState(pretrained.weights, { allowMissing: ['head.'], ignoreUnexpected: true });
    return m;
  };
  const state = { buildCopy, data, labeled: split.labeled, unlabeled: split.unlabeled, labels: split.labels, boxes };
  const { settings, tuning } = await tuneSupervised(c, tuner, state, initialModel);

  const model = initialModel();
  const owned: { ema: Backbone | null } = { ema: null };
  try {
    // What the evaluated weights score after each stage but the last (whose is the cell's).
    const stageScores: Record<string, Evaluation> = {};
    const lastStage = FINE_TUNING_STAGES[FINE_TUNING_STAGES.length - 1]!.name;
    const tuned = await fineTune(c, settings, { ...state, model }, owned, (stage, ema) => {
      if (stage !== lastStage) stageScores[stage] = traced('evaluation', () => evaluateCell(cell, model, ema, data, split, { raw: false })).final;
    });
    const stages = {
      pretrain: pretrained.summary,
      supervised: `${tuned.results.supervised.summary}${tuning ? `, tuned: ${formatParams(tuning.best)}` : ''}`,
      semi: tuned.results.semi.summary,
    };
    const evaluation = traced('evaluation', () => evaluateCell(cell, model, tuned.ema, data, split));
    stageScores[lastStage] = evaluation.final;
    // The analyses study what was scored: the evaluated weights on the same images.
    const analysed = await traced('analyses', () =>
      analyse(analyses, {
        model: evaluation.evaluated,
        split: split.heldOut ? data.train : data.test,
        ...(split.heldOut ? { subset: split.heldOut } : {}),
        classes: data.classes,
        batchSize: c.config.evaluation.batch_size,
        cell: cell.id,
      }),
    );
    const health = cellHealth(pretrained, tuned, stageScores);
    health.notes.push(...analysed.notes);
    // Whether the cell beats its probe is judged over its seeds, in the table's notes (tableNotes).
    const probe = await traced('linear probe', () => linearProbeAccuracy(c, loaded, split, boxes));
    if (probe !== null) health.figures.linear_probe_accuracy = probe;
    const metrics = cellMetrics(cell, loaded, split, evaluation, tuned, stages, tuning, started, boxesNote, health, analysed.figures);
    if (c.config.evaluation.keep_model)
      await c.hooks.keepModel?.(evaluation.evaluated, {
        backbone: c.config.model.backbone,
        factory: backbone,
        metrics,
        faceBoxes: { boxes, imageSize: backbone.imageSize, note: boxesNote },
      });
    const dataPicture = await datasetPicture(c, backbone.imageSize);
    return {
      metrics,
      log: tuned.log,
      ...(pretrained.picture ? { pretrainPicture: pretrained.picture } : {}),
      ...(dataPicture ? { dataPicture } : {}),
      ...(tuning ? { tuning } : {}),
      ...(analysed.files.length ? { files: analysed.files } : {}),
    };
  } finally {
    model.dispose();
    owned.ema?.dispose();
  }
}

/**
 * The raw weights' and the evaluated weights' (the EMA when the cell evaluates it and one was
 * kept) results, on the test split or on a k-fold sampler's held-out fold of the training set.
 */
function evaluateCell(cell: ResolvedCell, model: Backbone, ema: Backbone | null, data: FerData, split: CellSplit, opts = { raw: true }) {
  const { batch_size, use_ema } = cell.config.evaluation;
  const testSplit = split.heldOut ? data.train : data.test;
  const numClasses = data.classes.length;
  const evaluated = use_ema && ema ? ema : model;
  const raw = opts.raw || evaluated === model ? evaluate(model, testSplit, data.imageSize, numClasses, batch_size, split.heldOut) : null;
  const final: Evaluation = evaluated === model ? raw! : evaluate(evaluated, testSplit, data.imageSize, numClasses, batch_size, split.heldOut);
  return { raw: raw ?? final, final, evaluated };
}

/**
 * Whether each stage did its job: what each stage reports of itself (its loss at the first and
 * last epoch, the pseudo-labels that passed…) prefixed with the stage's name, the accuracy after
 * each fine-tuning stage that trained and each such later stage's gain over the one before; and the stages' notes,
 * with a note for a later stage that lowered the accuracy beyond chance (stageLossNote).
 */
function cellHealth(pretrained: StageResult, tuned: FineTuned, stageScores: Record<string, Evaluation>): { figures: Record<string, number>; notes: string[] } {
  const stageAccuracy = Object.fromEntries(Object.entries(stageScores).map(([name, e]) => [name, e.accuracy]));
  const figures: Record<string, number> = {};
  const notes: string[] = [];
  const stages: [string, StageResult][] = [['pretrain', pretrained], ...FINE_TUNING_STAGES.map((s): [string, StageResult] => [s.name, tuned.results[s.name]])];
  for (const [name, result] of stages) {
    for (const [k, v] of Object.entries(result.health ?? {})) figures[`${name}_${k}`] = v;
    for (const n of result.notes ?? []) notes.push(`${name}: ${n}`);
  }
  FINE_TUNING_STAGES.forEach((s, i) => {
    // A stage that trained nothing (`ssl: none`, no unlabeled images) has no accuracy or gain of
    // its own: a 0 gain there would count in a table's summary as a stage that changed nothing.
    if (!tuned.results[s.name].trained) return;
    figures[`${s.name}_accuracy`] = stageAccuracy[s.name]!;
    if (i === 0) return;
    const before = FINE_TUNING_STAGES[i - 1]!.name;
    figures[`${s.name}_gain`] = stageAccuracy[s.name]! - stageAccuracy[before]!;
    const note = stageLossNote(before, stageScores[before]!, stageScores[s.name]!);
    if (note) notes.push(`${s.name}: ${note}`);
  });
  return { figures, notes };
}

/** Below this p-value of McNemar's exact test, a stage's loss of accuracy is named in the notes. */
export const STAGE_LOSS_P = 0.05;

/**
 * The note of a stage that scored worse than the stage before it on the same images, by more than
 * chance: McNemar's exact test on the images only one of the two got right, p < STAGE_LOSS_P.
 * Null when the stage did not lose, or lost within chance.
 */
export function stageLossNote(beforeName: string, before: Evaluation, after: Evaluation): string | null {
  if (before.count !== after.count) throw new Error(`stageLossNote: ${before.count} and ${after.count} images do not pair`);
  let onlyBefore = 0;
  let onlyAfter = 0;
  for (let i = 0; i < before.count; i++) {
    if (before.correct[i]! > after.correct[i]!) onlyBefore++;
    else if (after.correct[i]! > before.correct[i]!) onlyAfter++;
  }
  if (onlyBefore <= onlyAfter) return null;
  const p = mcnemarExact(onlyBefore, onlyAfter);
  if (p >= STAGE_LOSS_P) return null;
  const pct = (a: number) => (100 * a).toFixed(2);
  return (
    `lowered the test accuracy from ${pct(before.accuracy)} % (after ${beforeName}) to ${pct(after.accuracy)} %, beyond chance ` +
    `(McNemar's exact test p = ${p.toPrecision(2)}: ${onlyBefore} images right before it are wrong after it, ${onlyAfter} the other way)`
  );
}

function cellMetrics(
  cell: ResolvedCell,
  { data, key }: CellData,
  split: CellSplit,
  { raw, final }: { raw: Evaluation; final: Evaluation },
  tuned: FineTuned,
  stages: CellMetrics['stages'],
  tuning: CellTuning | null,
  started: number,
  boxesNote: string,
  health: { figures: Record<string, number>; notes: string[] },
  analysis: Record<string, FigureTree>,
): CellMetrics {
  return {
    id: cell.id,
    seed: cell.config.seed,
    accuracy: final.accuracy,
    accuracy_raw: raw.accuracy,
    per_class: Object.fromEntries(data.classes.map((name, i) => [name, final.perClass[i] ?? null])),
    classes: data.classes,
    confusion: final.confusion,
    test_count: final.count,
    labeled_count: split.labeled.length,
    unlabeled_count: split.unlabeled.length,
    budget: split.budget,
    dataset: {
      name: data.name,
      display: data.displayName,
      stand_in: data.standIn ?? null,
      notes: [...(data.notes ?? []), boxesNote],
      key,
      source: data.source ?? null,
      train_count: data.train.size,
      image_size: data.imageSize,
    },
    stages,
    epochs: tuned.results.supervised.epochs ?? 0,
    steps: tuned.results.supervised.steps ?? 0,
    semi_epochs: tuned.epochs.semi ?? [],
    tuning: tuning && {
      tuner: tuning.tuner,
      best: tuning.best,
      validation_accuracy: tuning.bestScore,
      trials: tuning.trials.length,
      validation_count: tuning.validation_count,
    },
    health: health.figures,
    ...(Object.keys(analysis).length ? { analysis } : {}),
    stage_notes: health.notes,
    seconds: (Date.now() - started) / 1000,
  };
}
