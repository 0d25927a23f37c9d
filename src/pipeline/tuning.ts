import fs from 'node:fs';
import type { Trial, Tuner, TuningResult } from '../contracts/tuner.ts';
import { Rng } from '../core/rng.ts';
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
      throw new Error(`pipeline.tune: '${d.path}' is not a numeric setting of this cell (found ${cur === undefined ? 'nothing' : JSON.stringify(cur)}); name a number such as pipeline.supervised.lr`);
    }
  }
}

/**
 * Splits the labeled images into the part a trial trains on and a validation part that scores
 * it: `fraction` of every class (at least one image of a class with two or more), seeded.
 */
export function validationSplit(labeled: Int32Array, labels: Int32Array, numClasses: number, fraction: number, rng: Rng): { train: Int32Array; validation: Int32Array } {
  const quota = (count: number) => (count >= 2 ? Math.max(1, Math.round(count * fraction)) : 0);
  const { labeled: validation, unlabeled: train } = stratifiedPick(labels, numClasses, rng, quota, labeled);
  if (validation.length === 0 || train.length === 0) {
    throw new Error(`pipeline.tune: ${labeled.length} labeled images cannot be split into training and validation at ${fraction}; use more labels or another validation_fraction`);
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
