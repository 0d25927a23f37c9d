import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../core/errors.ts';
import { writeAtomic, writeJson } from '../core/files.ts';
import { setTracer } from '../core/trace.ts';
import { selectBackend } from '../engine/backend.ts';
import { formatProfile, RunProfile } from '../engine/profile.ts';
import type { Launcher, LaunchResult, LaunchRun, WorkerCommand } from '../contracts/launcher.ts';
import type { Tracker } from '../contracts/tracker.ts';
import { seedOf, type ResolvedRecipe } from '../recipe/recipe.ts';
import { finishRun } from './collect.ts';
import { configHash, writeLaunch, writeManifest, type RecipeInvocation, type RunManifest } from './manifest.ts';
import { Progress } from './progress.ts';
import { cellFolders, checkOutRoot, latestRunDir, lockRunDir, makeRunDir, removeStaleTemporaries } from './results.ts';
import { stopOnSignals, type RunContext, type StopSignal } from './seed-run.ts';
import { planUnits, unitStatus, type Unit } from './units.ts';
import { trackedSummary } from './tracked.ts';
import { trainUnits } from './worker.ts';

export interface RunOptions {
  backend?: string;
  json: boolean;
  /** false: a new run; true: the latest run of this recipe; a string: that run folder. */
  resume: string | boolean;
  outRoot: string;
  /** Time every phase of the run (data, stages, κ, optimizer, checkpoints, evaluation…) and its kernels: profile.txt and profile.json. */
  profile?: boolean;
  /** The command line that continues this run, without `--resume`: the interrupted run prints it. */
  resumeWith?: readonly string[];
  /** The command line's recipe options, for the run's workers and `ssfer collect` (default: the recipe file alone). */
  invocation?: RecipeInvocation;
  /** Submit the units and return at once (launchers that can: slurm). */
  detach?: boolean;
}

function openRunDir(recipe: ResolvedRecipe, opts: RunOptions): { dir: string; resumed: boolean } {
  const name = path.basename(recipe.file);
  if (recipe.name === '' || recipe.name === '.' || recipe.name === '..' || /[\\/]/.test(recipe.name)) {
    throw new UsageError(`${name}: a recipe's file name names its results folder, and '${recipe.name}' cannot (it would write outside --out); rename the file`);
  }
  if (opts.resume === false) return { dir: makeRunDir(path.join(opts.outRoot, recipe.name)), resumed: false };
  const dir = typeof opts.resume === 'string' ? opts.resume : latestRunDir(opts.outRoot, recipe.name);
  if (!dir || !fs.existsSync(path.join(dir, 'run.json'))) {
    throw new UsageError(
      typeof opts.resume === 'string'
        ? `--resume ${opts.resume}: no run.json there; name a folder that 'ssfer run' wrote (results/<recipe>/<timestamp>)`
        : `--resume: no earlier run of '${recipe.name}' under ${path.join(opts.outRoot, recipe.name)}; run without --resume first`,
    );
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as RunManifest;
  if (manifest.config_hash !== configHash(recipe)) {
    throw new UsageError(`--resume ${dir}: that run used different settings (recipe, scale or --set changed); run without --resume to start a new run`);
  }
  return { dir, resumed: true };
}

/** The recipe's launcher, and the checks that need no results folder yet (nothing is written when they fail). */
function chooseLauncher(recipe: ResolvedRecipe, opts: RunOptions): Launcher {
  const launcher = recipe.registry.create('launcher', recipe.cells[0]!.config.launcher, {
    seed: recipe.seed,
    scale: recipe.scale,
    recipeDir: path.dirname(recipe.file),
  });
  if (opts.detach && !launcher.detachable)
    throw new UsageError(
      `--detach: the ${launcher.name} launcher trains while ssfer run waits; only a launcher that hands the units to a scheduler (slurm) returns at once`,
    );
  if (opts.profile && !launcher.inProcess)
    throw new UsageError(
      `--profile times the process that trains, and the ${launcher.name} launcher trains in other processes; profile with --launcher inline`,
    );
  return launcher;
}

export async function runRecipe(recipe: ResolvedRecipe, opts: RunOptions): Promise<number> {
  const progress = new Progress();
  const launcher = chooseLauncher(recipe, opts);
  checkOutRoot(opts.outRoot);
  const { dir, resumed } = openRunDir(recipe, opts);
  const unlock = lockRunDir(dir, (t) => progress.log(t));
  try {
    return await runLocked(recipe, opts, { progress, launcher, dir, resumed });
  } finally {
    unlock();
  }
}

async function runLocked(
  recipe: ResolvedRecipe,
  opts: RunOptions,
  at: { progress: Progress; launcher: Launcher; dir: string; resumed: boolean },
): Promise<number> {
  const { progress, launcher, dir, resumed } = at;
  const cleaned = removeStaleTemporaries(opts.outRoot);
  if (cleaned.files)
    progress.log(
      `ssfer: removed ${cleaned.files} temporary file${cleaned.files === 1 ? '' : 's'} (${(cleaned.bytes / 2 ** 20).toFixed(1)} MiB) that killed runs left under ${opts.outRoot}`,
    );
  const folders = cellFolders(recipe, dir, resumed);
  // The launcher's workers choose their backend themselves (a cluster's nodes may have other devices).
  const backend = launcher.inProcess ? await chooseBackend(opts.backend, progress) : (opts.backend ?? 'auto');
  lendCredentials(recipe);
  progress.log(`ssfer: ${recipe.title}`);
  progress.log(
    `ssfer: ${recipe.cells.length} cells · scale ${recipe.scale} · seed ${recipe.seed} · ${launcher.inProcess ? `backend ${backend}` : `launcher ${launcher.name}`} · ${resumed ? 'resuming' : 'writing'} ${dir}`,
  );
  const manifest = writeManifest(recipe, dir, backend, launcher.name);
  const tracker = await startTracker(recipe, dir, backend, manifest);
  if (recipe.seeds > 1)
    progress.log(`ssfer: ${recipe.seeds} seeds per cell (${recipe.seed}…${seedOf(recipe.seed, recipe.seeds - 1)}): every cell's seed 0, then seed 1, …`);
  const units = planUnits(recipe, dir, folders, resumed);
  const launch = randomUUID();
  // The cells this launch sets out to train: their tracker runs are closed with their figures at the end.
  const started = new Set(units.filter((u) => unitStatus(u, launch, launcher.maxRetries).state !== 'done').map((u) => u.cell.id));
  let shared: unknown = null;
  if (!launcher.inProcess) {
    if (!tracker.share)
      throw new UsageError(
        `the ${tracker.name} tracker cannot be shared by the workers of the ${launcher.name} launcher (it has no share/join); use --launcher inline or another tracker`,
      );
    shared = await tracker.share(recipe.cells.filter((c) => started.has(c.id)).map((c) => trackedSummary(c)));
  }
  const resumeWith = opts.resumeWith ?? [path.relative(process.cwd(), recipe.file), '--scale', recipe.scale];
  writeLaunch(dir, {
    launch,
    recipe: recipe.file,
    cwd: process.cwd(),
    invocation: opts.invocation ?? { scale: recipe.scale, sets: [], pluginFiles: [] },
    out_root: path.resolve(opts.outRoot),
    backend: opts.backend ?? null,
    launcher: launcher.name,
    max_retries: launcher.maxRetries,
    tracker: shared,
    resume_with: resumeWith,
  });

  const stop = stopOnSignals((t) => progress.log(t));
  let result: LaunchResult;
  try {
    const run: RunContext = { recipe, outRoot: opts.outRoot, progress, tracker, stopRequested: () => stop.signal() !== null, ran: 0, ranSeconds: 0 };
    const handle = launchRun({ recipe, dir, units, launch, launcher, opts, progress, run, backend });
    result = await profiled(opts, dir, progress, () => launcher.launch(handle));
  } finally {
    stop.off();
    progress.done();
  }
  if (result.status === 'detached') {
    writeJson(path.join(dir, 'run.json'), { ...manifest, detached: true });
    progress.log(`ssfer: the units were handed to the scheduler; follow them with: ssfer status ${dir}`);
    return 0;
  }
  const interruptedBy: StopSignal | null = stop.signal() ?? (result.status === 'interrupted' ? 'SIGTERM' : null);
  return finishRun({
    recipe,
    dir,
    units,
    launch,
    maxRetries: launcher.maxRetries,
    manifest,
    tracker,
    progress,
    started,
    json: opts.json,
    interruptedBy,
    resumeWith,
  });
}

/** The program and script that run ssfer: this installation's command line, under this Node. */
const SSFER_BIN = fileURLToPath(new URL('../bin/ssfer.js', import.meta.url));

/** What the launcher gets: the run's units, how to train them here, how to start workers on them, where they stand. */
function launchRun(c: {
  recipe: ResolvedRecipe;
  dir: string;
  units: readonly Unit[];
  launch: string;
  launcher: Launcher;
  opts: RunOptions;
  progress: Progress;
  run: RunContext;
  backend: string;
}): LaunchRun {
  const absolute = path.resolve(c.dir);
  const command = (args: readonly string[], env: Record<string, string> = {}): WorkerCommand => ({
    command: process.execPath,
    args: [...process.execArgv.filter((a) => !a.startsWith('--inspect')), SSFER_BIN, ...args],
    env,
  });
  return {
    dir: absolute,
    recipe: c.recipe.name,
    units: c.units.map((u) => ({ key: u.key, label: u.label })),
    detach: Boolean(c.opts.detach),
    async runHere() {
      const { interrupted } = await trainUnits(c.run, c.units, {
        launch: c.launch,
        maxRetries: c.launcher.maxRetries,
        who: {},
        backend: c.backend,
        queue: false,
      });
      return { status: interrupted ? 'interrupted' : 'ended' };
    },
    workerCommand({ units, threads, name, log }) {
      const env: Record<string, string> = {};
      if (threads) for (const v of THREAD_VARIABLES) env[v] = String(threads);
      const args = ['worker', absolute, ...(units ? ['--units', units.join(',')] : []), ...(name ? ['--name', name] : []), ...(log ? ['--log', log] : [])];
      return command(args, env);
    },
    finishCommand: () => command(['collect', absolute, '--finish']),
    status: () => c.units.map((u) => unitStatus(u, c.launch, c.launcher.maxRetries)),
    stopRequested: c.run.stopRequested,
    note: (t) => c.progress.log(t),
    progress: (t) => c.progress.update(t),
  };
}

/**
 * How many threads a worker's kernels use: the native kernels' own pool and OpenBLAS read
 * SSFER_NATIVE_THREADS when they load; OpenBLAS and OpenMP builds also read their own variables.
 */
export const THREAD_VARIABLES = ['SSFER_NATIVE_THREADS', 'OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS'] as const;

/** The run's tracker, told that the run started. */
async function startTracker(recipe: ResolvedRecipe, dir: string, backend: string, manifest: RunManifest): Promise<Tracker> {
  const tracker = recipe.registry.create('tracker', recipe.cells[0]!.config.tracking, {
    seed: recipe.seed,
    scale: recipe.scale,
    recipeDir: path.dirname(recipe.file),
  });
  await tracker.startRun({
    recipe: recipe.name,
    title: recipe.title,
    scale: recipe.scale,
    seed: recipe.seed,
    seeds: recipe.seeds,
    backend,
    dir: path.resolve(dir),
    file: manifest.file,
    commit: gitCommit(),
    description: recipe.description,
    cells: recipe.cells.map((c) => trackedSummary(c)),
  });
  return tracker;
}

/**
 * Runs fn, with `--profile` inside a profile of the run: started after the backend is chosen and
 * before the cells' plugins are created (it traces them), printed and kept as profile.txt/json.
 */
async function profiled<T>(opts: RunOptions, dir: string, progress: Progress, fn: () => Promise<T>): Promise<T> {
  if (!opts.profile) return fn();
  const profile = new RunProfile();
  profile.start();
  setTracer(profile);
  try {
    return await fn();
  } finally {
    profile.stop();
    setTracer(null);
    const report = profile.report();
    writeJson(path.join(dir, 'profile.json'), report);
    writeAtomic(path.join(dir, 'profile.txt'), `${formatProfile(report)}\n`);
    progress.log(formatProfile(report));
  }
}

async function chooseBackend(wanted: string | undefined, progress: Progress): Promise<string> {
  try {
    const choice = await selectBackend(wanted);
    // Say once why the fast CPU kernels are not in use, so a slow run is not a mystery.
    for (const note of choice.notes) if (note.startsWith('native:')) progress.log(`ssfer: ${note}; falling back to ${choice.name}`);
    return choice.name;
  } catch (err) {
    throw new UsageError(`--backend: ${(err as Error).message}`);
  }
}

/** The tracker's credentials, taken out of the recipe's URIs, go to its client (and a launcher's workers) through MLflow's own variables, never into a file. */
function lendCredentials(recipe: ResolvedRecipe): void {
  if (process.env.MLFLOW_TRACKING_TOKEN || process.env.MLFLOW_TRACKING_USERNAME) return;
  const uri = (recipe.cells[0]!.config.tracking as { uri?: unknown }).uri;
  const credentials = typeof uri === 'string' ? recipe.credentials.get(uri) : undefined;
  if (!credentials) return;
  process.env.MLFLOW_TRACKING_USERNAME = credentials.username;
  process.env.MLFLOW_TRACKING_PASSWORD = credentials.password;
}

/** The project's git commit, for tracking tags; null outside a git checkout. */
function gitCommit(): string | null {
  try {
    return (
      execFileSync('git', ['rev-parse', 'HEAD'], { cwd: path.dirname(new URL(import.meta.url).pathname), stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim() || null
    );
  } catch {
    return null;
  }
}
