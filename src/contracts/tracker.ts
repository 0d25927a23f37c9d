/** What a tracker is told about a run of a recipe. */
export interface RunInfo {
  readonly recipe: string;
  readonly title: string;
  readonly scale: string;
  readonly seed: number;
  readonly backend: string;
  /** The results folder of this run (everything the run writes locally is there). */
  readonly dir: string;
  /** The recipe file, relative to the working folder. */
  readonly file: string;
  /** Git commit of the project, when known. */
  readonly commit: string | null;
  /** The recipe's description, when it has one. */
  readonly description?: string;
  /** Every cell of the run (also those a resumed run keeps), in order. */
  readonly cells?: readonly CellInfo[];
}

/** A cell's value on one grid axis. */
export interface CellAxis {
  readonly axis: string;
  readonly side: 'row' | 'column';
  /** The value as the cell id writes it (`iou`, `0.05`). */
  readonly value: string;
  /** The value as the table shows it (`IOU`, `5%`). */
  readonly label: string;
}

/** A stage a cell shares with other cells (the pre-training): the key of its output and the settings it depends on. */
export interface SharedStage {
  readonly key: string;
  readonly config: Record<string, unknown>;
}

export interface CellInfo {
  readonly id: string;
  /** The cell's fully resolved configuration (every default filled in). */
  readonly config: Record<string, unknown>;
  /** The cell's values on the grid's axes, rows first. */
  readonly grid?: readonly CellAxis[];
  /**
   * Stages the cell shares with other cells, by stage name (`pretrain`). The step metrics of such
   * a stage (`pretrain/loss`) and its `<stage>_…` health figures belong to the shared stage.
   */
  readonly shared?: Readonly<Record<string, SharedStage>>;
}

/** A dataset a cell trained on, as a run input. */
export interface DatasetInput {
  /** The dataset's display name (`RAF-DB`). */
  readonly name: string;
  /** A hash of what the loaded data depends on (the data cache key). */
  readonly digest: string;
  /** What the cell used it for (`training`). */
  readonly context: string;
  /** The folder it was read from, or what a synthetic stand-in is. */
  readonly source: { readonly folder: string } | { readonly standIn: string };
  /** Sizes and classes of the loaded data. */
  readonly profile: Record<string, unknown>;
}

/** A cell's model exported for the tracker (when it logs models). */
export interface CellModel {
  /** The ONNX file: input `images` [batch, S, S, channels] float32, output `logits` [batch, classes]. */
  readonly onnx: string;
  readonly imageSize: number;
  readonly channels: number;
  readonly classes: readonly string[];
  /** What a user of the model needs besides the file (preprocessing, class names, where it came from). */
  readonly metadata: Record<string, unknown>;
}

export type RunStatus = 'FINISHED' | 'FAILED' | 'KILLED';

/**
 * `tracker` plugins: where runs are recorded besides the local results folder (which is always
 * written). Calls arrive in order: startRun, then per cell startCell, logMetrics…, endCell, and
 * finally endRun. A tracker must never make training fail: it keeps what it cannot send.
 */
export interface Tracker {
  readonly name: string;
  /** Training metrics are logged every this many steps (and at a stage's last step). */
  readonly every: number;
  /** Whether it records models: then each finished cell's model is exported and given to endCell. */
  readonly logsModels?: boolean;
  startRun(run: RunInfo): Promise<void>;
  startCell(cell: CellInfo): Promise<void>;
  /** Metrics of one cell at a step, keyed `<stage>/<figure>`; each stage counts its own steps from 1. */
  logMetrics(cellId: string, metrics: Record<string, number>, step: number): void;
  /** Final metrics, files to attach (absolute paths), and how the cell ended; a finished cell also gives its data and model. */
  endCell(cellId: string, result: CellResult): Promise<void>;
  /** The run's own files (table.md, table.json, the resolved recipe), how it ended and the table's summary figures. */
  endRun(result: { artifacts: readonly string[]; status: RunStatus; metrics?: Readonly<Record<string, number>> }): Promise<void>;
}

export interface CellResult {
  readonly metrics: Record<string, number>;
  readonly artifacts: readonly string[];
  readonly status: RunStatus;
  /** The data the cell trained on. */
  readonly inputs?: readonly DatasetInput[];
  /** The cell's model, exported (given only to a tracker that logs models). */
  readonly model?: CellModel;
  /** What each stage did, one line each. */
  readonly stages?: Readonly<Record<string, string>>;
}

declare module '../core/plugin.ts' {
  interface PluginContracts {
    tracker: Tracker;
  }
}
