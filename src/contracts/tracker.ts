/** What a tracker is told about a run of a recipe. */
export interface RunInfo {
  readonly recipe: string;
  readonly title: string;
  readonly scale: string;
  readonly seed: number;
  /** How many seeds every cell runs (seed k is the cell's seed + k). */
  readonly seeds: number;
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
  readonly cells?: readonly CellSummaryInfo[];
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

/** One seed's run of a cell: the cell's id and which of its seeds (0 … seeds − 1). */
export interface CellRun {
  readonly id: string;
  readonly seedIndex: number;
}

/** A cell over its seeds: its id, its configuration (its `seed` is seed 0's) and its place in the grid. */
export interface CellSummaryInfo {
  readonly id: string;
  readonly config: Record<string, unknown>;
  /** The cell's values on the grid's axes, rows first. */
  readonly grid?: readonly CellAxis[];
}

/** One seed's run of a cell. */
export interface CellInfo extends CellRun {
  /** This run's fully resolved configuration (every default filled in; `seed` is this seed's, `seeds` how many the cell runs). */
  readonly config: Record<string, unknown>;
  /** The cell's values on the grid's axes, rows first. */
  readonly grid?: readonly CellAxis[];
  /**
   * Stages this seed shares with the other cells' same seed, by stage name (`pretrain`; its key
   * holds the seed). The step metrics of such a stage (`pretrain/loss`) and its `<stage>_…`
   * health figures belong to the shared stage.
   */
  readonly shared?: Readonly<Record<string, SharedStage>>;
}

/** A dataset a seed of a cell trained on, as a run input. */
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

/** A seed's model exported for the tracker (when it logs models). */
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
 * written). Calls arrive in order: startRun, then per cell and seed startCell, logMetrics…,
 * endCell; after every seed ran, summarizeCell once per cell; finally endRun. A tracker must never
 * make training fail: it keeps what it cannot send.
 */
export interface Tracker {
  readonly name: string;
  /** Training metrics are logged every this many steps (and at a stage's last step). */
  readonly every: number;
  /** Whether it records models: then each finished seed's model is exported and given to endCell. */
  readonly logsModels?: boolean;
  startRun(run: RunInfo): Promise<void>;
  /** One seed of a cell starts. */
  startCell(cell: CellInfo): Promise<void>;
  /** Metrics of one seed of a cell at a step, keyed `<stage>/<figure>`; each stage counts its own steps from 1. */
  logMetrics(run: CellRun, metrics: Record<string, number>, step: number): void;
  /** A seed's final metrics, files to attach (absolute paths), and how it ended; a finished seed also gives its data and model. */
  endCell(run: CellRun, result: CellResult): Promise<void>;
  /**
   * The cell's figures over its seeds (the mean, sample std and 95 % interval of its test accuracy;
   * the paired difference to the baseline row; the mean health figures), and how the cell ended.
   * Called for every cell of the table, also for one whose seeds an earlier run finished.
   */
  summarizeCell(cell: CellSummaryInfo, result: { metrics: Record<string, number>; status: RunStatus }): Promise<void>;
  /** The run's own files (table.md, table.json, the resolved recipe), how it ended and the table's summary figures. */
  endRun(result: { artifacts: readonly string[]; status: RunStatus; metrics?: Readonly<Record<string, number>> }): Promise<void>;
  /**
   * For a run whose seeds other processes train (a launcher's workers), after startRun: makes the
   * runs those processes log under (the cells' own runs, under the run's) and returns what they need
   * to join it, as JSON (it is written to the run folder's launch.json). A tracker without it cannot
   * be used with such a launcher.
   */
  share?(cells: readonly CellSummaryInfo[]): Promise<unknown>;
  /**
   * In a worker, instead of startRun: log under the run another process started, from what its
   * share returned; `worker` names this process (for files of its own, such as an outbox). The
   * worker then calls startCell, logMetrics and endCell for the seeds it trains, and leave when it
   * is done; the process that finishes the run calls summarizeCell and endRun (after joining, when
   * it did not start the run).
   */
  join?(run: RunInfo, shared: unknown, worker: string): Promise<void>;
  /** A worker that joined is done: what it could not send yet gets one last try, and it says what is left. */
  leave?(): Promise<void>;
}

/** How one seed of a cell ended. */
export interface CellResult {
  readonly metrics: Record<string, number>;
  readonly artifacts: readonly string[];
  readonly status: RunStatus;
  /** The data the seed trained on. */
  readonly inputs?: readonly DatasetInput[];
  /** The seed's model, exported (given only to a tracker that logs models). */
  readonly model?: CellModel;
  /** What each stage did, one line each. */
  readonly stages?: Readonly<Record<string, string>>;
}

declare module '../core/plugin.ts' {
  interface PluginContracts {
    tracker: Tracker;
  }
}
