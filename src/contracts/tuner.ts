import type { Rng } from '../core/rng.ts';

/** One searched setting: a numeric recipe path and its bounds. */
export interface SearchDimension {
  readonly path: string;
  readonly min: number;
  readonly max: number;
  /** Searched on a log scale (learning rates). */
  readonly log: boolean;
}

/** One evaluated setting of the search. */
export interface Trial {
  readonly index: number;
  /** 0 for the initial population, then 1… per iteration. */
  readonly iteration: number;
  readonly agent: number;
  readonly params: Record<string, number>;
  /** Validation accuracy in [0, 1]; higher is better. */
  readonly score: number;
}

export interface TuningResult {
  readonly best: Record<string, number>;
  readonly bestScore: number;
  readonly trials: readonly Trial[];
}

/**
 * `tuner` plugins: a search over recipe settings before a cell's final training. The pipeline
 * scores a setting by training the supervised stage on the labeled images minus a held-out
 * validation share and measuring accuracy on that share — never on the test split.
 */
export interface Tuner {
  readonly name: string;
  /** Nothing to search: the cell trains with the recipe's values. */
  readonly search: readonly SearchDimension[];
  /** Share of the labeled images held out to score settings. */
  readonly validationFraction: number;
  /** Steps of the supervised stage per scored setting; null: the stage's own budget. */
  readonly trialMaxSteps: number | null;
  tune(score: (params: Record<string, number>) => Promise<number>, rng: Rng, onTrial?: (t: Trial) => void): Promise<TuningResult>;
}

declare module '../core/plugin.ts' {
  interface PluginContracts {
    tuner: Tuner;
  }
}
