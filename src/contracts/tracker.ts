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
}

export interface CellInfo {
  readonly id: string;
  /** The cell's fully resolved configuration (every default filled in). */
  readonly config: Record<string, unknown>;
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
  startRun(run: RunInfo): Promise<void>;
  startCell(cell: CellInfo): Promise<void>;
  /** Metrics of one cell at a step (per logging interval or per epoch). */
  logMetrics(cellId: string, metrics: Record<string, number>, step: number): void;
  /** Final metrics, files to attach (absolute paths), and how the cell ended. */
  endCell(cellId: string, result: { metrics: Record<string, number>; artifacts: readonly string[]; status: RunStatus }): Promise<void>;
  /** The run's own files (table.md, table.json, the resolved recipe) and how it ended. */
  endRun(result: { artifacts: readonly string[]; status: RunStatus }): Promise<void>;
}

declare module '../core/plugin.ts' {
  interface PluginContracts {
    tracker: Tracker;
  }
}
