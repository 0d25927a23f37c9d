import * as tf from '@tensorflow/tfjs';
import type { Analysis, AnalysisFile, AnalysisInput, FigureTree } from '../contracts/analysis.ts';
import type { Backbone } from '../contracts/backbone.ts';
import type { Split } from '../contracts/dataset.ts';
import { gatherImages } from '../train/batches.ts';

export interface Evaluation {
  /** Share of test images classified correctly, in [0, 1]. */
  readonly accuracy: number;
  /** Per-class recall (accuracy on that class's images); null for a class absent from the split. */
  readonly perClass: readonly (number | null)[];
  /** confusion[true][predicted] counts. */
  readonly confusion: number[][];
  readonly count: number;
  /** Per image evaluated, in the order of the split (or of `subset`): 1 where the prediction was right. */
  readonly correct: Uint8Array;
}

/**
 * Accuracy, per-class accuracy and confusion matrix of a model on a split, or on the images of
 * the split at `subset` (a k-fold's held-out fold, a tuner's validation images).
 */
export function evaluate(model: Backbone, split: Split, imageSize: number, numClasses: number, batchSize: number, subset?: Int32Array): Evaluation {
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  const indices = subset ?? Int32Array.from({ length: split.size }, (_, i) => i);
  const count = indices.length;
  const right = new Uint8Array(count);
  // An accuracy of nothing would print as a plausible 0 %: a split left empty is a bug upstream.
  if (count === 0)
    throw new Error('evaluate: no images to evaluate on (the split or the subset is empty); a cell needs test images, or a held-out fold, to be scored');
  for (let s = 0; s < count; s += batchSize) {
    const idx = indices.subarray(s, Math.min(count, s + batchSize));
    const predicted = tf.tidy(() => tf.argMax(model.logits(gatherImages(split.images, idx, imageSize), { training: false }), 1).dataSync());
    idx.forEach((i, k) => {
      confusion[split.labels[i]!]![predicted[k]!]! += 1;
      right[s + k] = predicted[k] === split.labels[i] ? 1 : 0;
    });
  }
  const correct = confusion.reduce((acc, row, c) => acc + row[c]!, 0);
  const perClass = confusion.map((row, c) => {
    const n = row.reduce((a, b) => a + b, 0);
    return n ? row[c]! / n : null;
  });
  return { accuracy: correct / count, perClass, confusion, count, correct: right };
}

/** What a cell's analyses left: their figures by name, the files for the cell's folder, their notes. */
export interface Analysed {
  readonly figures: Record<string, FigureTree>;
  readonly files: readonly AnalysisFile[];
  readonly notes: readonly string[];
}

/** A file name an analysis may write: plain, and none of the cell's own outputs. */
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const CELL_FILES = new Set([
  'metrics.json',
  'log.jsonl',
  'confusion.json',
  'confusion.png',
  'curves.png',
  'data.png',
  'pretrain.png',
  'tuning.json',
  'tuning.png',
  'error.json',
]);

/**
 * Runs the analyses (`evaluation.analyses`, in order) on the evaluated model and the images it
 * was scored on: the test split, or the held-out subset of the training split.
 */
export async function analyse(analyses: readonly Analysis[], input: Omit<AnalysisInput, 'images'> & { split: Split; subset?: Int32Array }): Promise<Analysed> {
  if (analyses.length === 0) return { figures: {}, files: [], notes: [] };
  const { split, subset, ...rest } = input;
  const images = subset ? gatherSplit(split, subset, input.model.imageSize * input.model.imageSize * input.model.channels) : split;
  if (images.size === 0) throw new Error('analysis: no images to analyse (the split or the subset is empty)');
  const figures: Record<string, FigureTree> = {};
  const files: AnalysisFile[] = [];
  const notes: string[] = [];
  const written = new Map<string, string>();
  for (const analysis of analyses) {
    const result = await analysis.run({ ...rest, images });
    figures[analysis.name] = result.figures;
    for (const f of result.files ?? []) {
      const clash = written.get(f.name);
      if (!FILE_NAME.test(f.name) || CELL_FILES.has(f.name) || clash !== undefined)
        throw new Error(
          `analysis '${analysis.name}' writes '${f.name}', ${clash !== undefined ? `which '${clash}' wrote already` : 'which is not a plain file name of its own'}: name its files after the analysis (letters, digits, '.', '_', '-')`,
        );
      written.set(f.name, analysis.name);
      files.push(f);
    }
    for (const n of result.notes ?? []) notes.push(`analysis ${analysis.name}: ${n}`);
  }
  return { figures, files, notes };
}

/** The images of a split at `subset`, as a split of their own. */
function gatherSplit(split: Split, subset: Int32Array, px: number): AnalysisInput['images'] {
  const images = new Float32Array(subset.length * px);
  const labels = new Int32Array(subset.length);
  subset.forEach((i, k) => {
    images.set(split.images.subarray(i * px, (i + 1) * px), k * px);
    labels[k] = split.labels[i]!;
  });
  return { size: subset.length, images, labels };
}
