import fs from 'node:fs';
import path from 'node:path';
import type { Backbone } from '../contracts/backbone.ts';
import type { CellState } from '../contracts/stages.ts';
import type { Trial, Tuner, TuningResult } from '../contracts/tuner.ts';
import { deriveSeed, Rng } from '../core/rng.ts';
import type { CellConfig } from '../recipe/schema.ts';
import { Interrupted, type CellContext } from './cell-context.ts';
import { evaluate } from './evaluate.ts';
import { FINE_TUNING_STAGES } from './stages.ts';
import { getPath, setPath } from '../core/json.ts';
import { stratifiedPick } from '../data/stratify.ts';
import { writeJson } from '../core/files.ts';

/** What a cell reports about its search (also written as tuning.json). */
export interface CellTuning extends TuningResult {
  readonly tuner: string;
  readonly validation_count: number;
  readonly train_count: number;
}

/** The config with numeric settings replaced at dotted paths (a deep copy; the input is untouched). */
export function withSettings<C extends object>(config: C, params: Record<string, number>): C {
  const copy = structuredClone(config);
  for (const [dotted, value] of Object.entries(params)) setPath(copy, dotted, value);
  return copy;
}

/** Fails before any work when a searched path does not name a numeric setting of the cell (lists are not searched into). */
export function checkSearchPaths(config: object, tuner: Tuner): void {
  for (const d of tuner.search) {
    const cur = getPath(config, d.path, false);
    if (typeof cur !== 'number') {
      throw new Error(
        `pipeline.tune: '${d.path}' is not a numeric setting of this cell (found ${cur === undefined ? 'nothing' : JSON.stringify(cur)}); name a number such as pipeline.supervised.lr`,
      );
    }
  }
}

/**
 * Splits the labeled images into the part a trial trains on and a validation part that scores
 * it: `fraction` of every class (at least one image of a class with two or more), seeded.
 */
export function validationSplit(
  labeled: Int32Array,
  labels: Int32Array,
  numClasses: number,
  fraction: number,
  rng: Rng,
): { train: Int32Array; validation: Int32Array } {
  const quota = (count: number) => (count >= 2 ? Math.max(1, Math.round(count * fraction)) : 0);
  const { labeled: validation, unlabeled: train } = stratifiedPick(labels, numClasses, rng, quota, labeled);
  if (validation.length === 0 || train.length === 0) {
    throw new Error(
      `pipeline.tune: ${labeled.length} labeled images cannot be split into training and validation at ${fraction}; use more labels or another validation_fraction`,
    );
  }
  return { train, validation };
}

/**
 * Runs the tuner with `score` (train on the training part, accuracy on the validation part).
 * Every scored setting is appended to `memoFile` as it finishes; a resumed search takes the
 * recorded scores for the settings it proposes again (same seed, same order), so a search
 * interrupted after k trials continues at trial k + 1.
 */
export async function runTuning(args: {
  tuner: Tuner;
  seed: number;
  memoFile: string | null;
  score: (params: Record<string, number>) => Promise<number>;
  onTrial?: (t: Trial) => void;
}): Promise<TuningResult> {
  const memo: Trial[] = args.memoFile && fs.existsSync(args.memoFile) ? (JSON.parse(fs.readFileSync(args.memoFile, 'utf8')) as { trials: Trial[] }).trials : [];
  const done: Trial[] = [];
  let index = 0;
  return args.tuner.tune(
    async (params) => {
      const recorded = memo[index++];
      const same = recorded && Object.keys(params).every((p) => recorded.params[p] === params[p]);
      return same ? recorded.score : args.score(params);
    },
    Rng.derive(args.seed, 'tune'),
    (t) => {
      done.push(t);
      if (args.memoFile) writeJson(args.memoFile, { trials: done });
      args.onTrial?.(t);
    },
  );
}

/**
 * The supervised stage's settings for a cell, after the tuner's search when the recipe asks for
 * one: each proposed setting trains the finetune plugin on the labeled images minus a held-out
 * share, from the cell's initial model, and is scored by accuracy on that share.
 */
export async function tuneSupervised(
  c: CellContext,
  tuner: Tuner,
  state: Omit<CellState, 'model' | 'seed'>,
  initialModel: () => Backbone,
): Promise<{ settings: CellConfig; tuning: CellTuning | null }> {
  if (tuner.search.length === 0) return { settings: c.config, tuning: null };
  const { data, labels } = state;
  const numClasses = data.classes.length;
  const evalOpts = c.config.evaluation;
  const parts = validationSplit(state.labeled, labels, numClasses, tuner.validationFraction, Rng.derive(c.seed, 'tune', 'validation'));
  const found = await runTuning({
    tuner,
    seed: deriveSeed(c.seed, 'tune'),
    memoFile: c.hooks.checkpointDir ? path.join(c.hooks.checkpointDir, 'tuning.json') : null,
    score: async (params) => {
      const trial = withSettings(c.config, tuner.trialMaxSteps === null ? params : { ...params, 'pipeline.supervised.max_steps': tuner.trialMaxSteps });
      const candidate = initialModel();
      let averaged: Backbone | null = null;
      try {
        const stage = c.create('finetune', trial.pipeline.supervised);
        const r = await stage.run(
          // The budget rules count the whole labeled set: a trial trains the epochs the final run will.
          { ...state, model: candidate, labeled: parts.train, budgetLabels: state.labeled.length, seed: FINE_TUNING_STAGES[0].seed(c.seed) },
          { onStep: (l, plan) => c.hooks.onStep('tune', l, plan), shouldStop: c.hooks.shouldStop },
        );
        averaged = r.ema ?? null;
        if (r.stopped) throw new Interrupted();
        const scored = evalOpts.use_ema && averaged ? averaged : candidate;
        return evaluate(scored, data.train, data.imageSize, numClasses, evalOpts.batch_size, parts.validation).accuracy;
      } finally {
        candidate.dispose();
        averaged?.dispose();
      }
    },
    onTrial: (t) =>
      c.hooks.note(
        `  ${c.hooks.name ?? c.cell.id}: ${tuner.name} trial ${t.index + 1} (iteration ${t.iteration}) ${formatParams(t.params)} → validation ${(t.score * 100).toFixed(2)}%`,
      ),
  });
  return {
    settings: withSettings(c.config, found.best),
    tuning: { ...found, tuner: tuner.name, validation_count: parts.validation.length, train_count: parts.train.length },
  };
}

/** Searched settings as `lr 1.23e-4, min_lr 4.56e-6` (the last part of each path). */
export function formatParams(params: Record<string, number>): string {
  return Object.entries(params)
    .map(([p, v]) => `${p.split('.').pop()} ${v.toPrecision(3)}`)
    .join(', ');
}
