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
}

/** One seed's run of a cell: the cell's id and which of its seeds (0 … seeds − 1). */
export interface CellRun {
  readonly id: string;
  readonly seedIndex: number;
}

export interface CellInfo extends CellRun {
  /** This run's fully resolved configuration (every default filled in; `seed` is this seed's, `seeds` how many the cell runs). */
  readonly config: Record<string, unknown>;
}

/** A cell over its seeds: its id and its configuration (its `seed` is seed 0's). */
export interface CellSummaryInfo {
  readonly id: string;
  readonly config: Record<string, unknown>;
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
  startRun(run: RunInfo): Promise<void>;
  /** One seed of a cell starts. */
  startCell(cell: CellInfo): Promise<void>;
  /** Metrics of one seed of a cell at a step (per logging interval or per epoch). */
  logMetrics(run: CellRun, metrics: Record<string, number>, step: number): void;
  /** A seed's final metrics, files to attach (absolute paths), and how it ended. */
  endCell(run: CellRun, result: { metrics: Record<string, number>; artifacts: readonly string[]; status: RunStatus }): Promise<void>;
  /**
   * The cell's figures over its seeds (the mean, sample std and 95 % interval of its test accuracy;
   * the paired difference to the baseline row; the mean health figures), and how the cell ended.
   * Called for every cell of the table, also for one whose seeds an earlier run finished.
   */
  summarizeCell(cell: CellSummaryInfo, result: { metrics: Record<string, number>; status: RunStatus }): Promise<void>;
  /** The run's own files (table.md, table.json, the resolved recipe) and how it ended. */
  endRun(result: { artifacts: readonly string[]; status: RunStatus }): Promise<void>;
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
   * worker then calls startCell, logMetrics and endCell for the seeds it trains; the process that
   * finishes the run calls summarizeCell and endRun (after joining, when it did not start the run).
   */
  join?(run: RunInfo, shared: unknown, worker: string): Promise<void>;
}

declare module '../core/plugin.ts' {
  interface PluginContracts {
    tracker: Tracker;
  }
}
