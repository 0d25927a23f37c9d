import type { Backbone } from './backbone.ts';

/**
 * Figures an analysis reports: numbers by name, grouped as it likes (`inside: { '0.02': 0.41 }`).
 * A name may hold dots (an ε of 0.02); a table finds a figure by its dotted path all the same.
 */
export interface FigureTree {
  readonly [name: string]: number | FigureTree;
}

/** What an analysis studies: the cell's evaluated model on the images it was scored on. */
export interface AnalysisInput {
  /** The evaluated weights (the EMA, or the semi stage's teacher, where that is what the cell reports); the analysis must not change them. */
  readonly model: Backbone;
  /** The test split, or a k-fold sampler's held-out fold: NHWC pixels in [0, 1] at the model's image size, and their labels. */
  readonly images: { readonly size: number; readonly images: Float32Array; readonly labels: Int32Array };
  /** Class names in label order. */
  readonly classes: readonly string[];
  /** Images per forward pass (`evaluation.batch_size`). */
  readonly batchSize: number;
  /** The cell's id, for titles of pictures. */
  readonly cell: string;
}

/** A file an analysis writes into the cell's folder: a picture (PNG bytes) or text (JSON). */
export interface AnalysisFile {
  /** A plain file name (letters, digits, `.`, `_`, `-`), conventionally starting with the analysis's name. */
  readonly name: string;
  readonly data: Uint8Array | string;
}

export interface AnalysisResult {
  /** Kept under `analysis.<name>` in the cell's metrics.json and table.json; a table can show them (`grid.metric`). */
  readonly figures: FigureTree;
  readonly files?: readonly AnalysisFile[];
  /** What a reader of the table must know (a degenerate map, an empty region), `analysis <name>: …` in the table notes. */
  readonly notes?: readonly string[];
}

/**
 * What an `analysis` plugin creates: a study run after the cell's evaluation (`evaluation.analyses`).
 * It disposes every tensor it makes and leaves the model as it found it.
 */
export interface Analysis {
  readonly name: string;
  run(input: AnalysisInput): Promise<AnalysisResult>;
}

declare module '../core/plugin.ts' {
  interface PluginContracts {
    analysis: Analysis;
  }
}
