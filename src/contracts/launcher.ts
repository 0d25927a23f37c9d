/**
 * `launcher` plugins: where the units of a run — one seed of one cell each — are trained. The run
 * (its folder, run.json, the table, the tracker's parent run) stays with `ssfer run`; a launcher
 * only gets the units trained: in this process (`inline`), by worker processes (`processes`), or
 * by a cluster's scheduler (`slurm`). A worker is `ssfer worker <run dir> …`: it takes units (an
 * exclusive lease per unit in its folder), trains them into the same run folder and records each
 * attempt there, so that any process can tell what is done, running, failed or waiting.
 */

/** One unit of a run: a seed of a cell. */
export interface LaunchUnit {
  /** Its folder under the run folder, `cells/<cell>/seed-<k>`: what `ssfer worker --units` names. */
  readonly key: string;
  /** `<cell id>` or `<cell id> seed <k>`, for messages. */
  readonly label: string;
}

export type UnitState = 'done' | 'running' | 'failed' | 'waiting';

/** Where a unit stands, read from the run folder. */
export interface UnitStatus extends LaunchUnit {
  readonly state: UnitState;
  /** How many times this launch started it. */
  readonly attempts: number;
  /** Who runs it (running), e.g. `pid 123 on node1` or `SLURM 45_3`. */
  readonly where?: string;
  /** Why its last attempt ended without a result (failed, or waiting for a retry). */
  readonly error?: string;
}

/** A worker's command line: the program, its arguments, and what to add to its environment. */
export interface WorkerCommand {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** What `ssfer run` hands a launcher. */
export interface LaunchRun {
  /** The run folder (absolute). */
  readonly dir: string;
  /** The recipe's name (results/<recipe>/…), for job names. */
  readonly recipe: string;
  /** Every unit of the run in the run's order (every cell's seed 0, then seed 1, …). */
  readonly units: readonly LaunchUnit[];
  /** `ssfer run --detach`: submit and return at once (launchers that cannot, refuse it). */
  readonly detach: boolean;
  /** Trains the units that are not finished in this process (the inline launcher). */
  runHere(): Promise<LaunchResult>;
  /**
   * The command that starts a worker on this run (`ssfer worker <dir>`): `units` limits it to those
   * units in that order (`--units KEY,KEY`; else it takes the next unfinished unit until none is
   * left), `threads` sets the threads of the native kernels and of OpenBLAS in it (its environment),
   * `name` names it in leases and messages (`--name`), `log` is where its output goes, which
   * `ssfer status` shows the end of for a unit it was killed running (`--log`).
   */
  workerCommand(opts: { units?: readonly string[]; threads?: number | null; name?: string; log?: string }): WorkerCommand;
  /** The command that builds the table and ends the run once its units ended (for a job that runs after the workers). */
  finishCommand(): WorkerCommand;
  /** Every unit's state now. */
  status(): UnitStatus[];
  /** Whether `ssfer run` was asked to stop (Ctrl-C, SIGTERM, SIGHUP): stop the workers, keep their checkpoints. */
  stopRequested(): boolean;
  /** A permanent line on stderr. */
  note(text: string): void;
  /** The progress line (redrawn in place on a terminal). */
  progress(text: string): void;
}

export interface LaunchResult {
  /** 'detached': the units were handed to a scheduler and the run goes on without `ssfer run`. */
  readonly status: 'ended' | 'interrupted' | 'detached';
}

export interface Launcher {
  readonly name: string;
  /** True when it trains in the process of `ssfer run` (inline): that process then chooses the backend and may profile. */
  readonly inProcess: boolean;
  /** True when it can hand the units to a scheduler and let `ssfer run --detach` return at once. */
  readonly detachable: boolean;
  /**
   * How many times a unit whose attempt failed or was killed is started again (per launch): after
   * 1 + maxRetries such attempts it is failed. An attempt stopped by a signal (SIGTERM: a time
   * limit, a preemption) is not one of them; it continues from its checkpoint when started again.
   */
  readonly maxRetries: number;
  launch(run: LaunchRun): Promise<LaunchResult>;
}

declare module '../core/plugin.ts' {
  interface PluginContracts {
    launcher: Launcher;
  }
}
