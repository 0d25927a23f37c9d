import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UsageError } from '../core/errors.ts';
import { writeAtomic, writeJson } from '../core/files.ts';
import { selectBackend } from '../engine/backend.ts';
import type { Tracker } from '../contracts/tracker.ts';
import { seedOf, type ResolvedCell, type ResolvedRecipe } from '../recipe/recipe.ts';
import type { CellConfig } from '../recipe/schema.ts';
import { buildTable, estimateCells, tableMarkdown, tableText, type CellEstimate, type SeedResult } from '../report/table.ts';
import { Interrupted, runCell, type CellHooks, type CellMetrics } from './cell.ts';
import { analysisFigures, fmtRef, tableNotes, writeCellOutputs, writeTuning } from './outputs.ts';
import { RunScope } from './scope.ts';
import { bar, duration, Progress } from './progress.ts';
import { cellFolder, checkOutRoot, latestRunDir, legacyCellFolder, lockRunDir, makeRunDir, removeStaleTemporaries, seedFolder } from './results.ts';
import { hashOf } from '../core/json.ts';
import { setTracer, traced } from '../core/trace.ts';
import { formatProfile, RunProfile } from '../engine/profile.ts';
import { execFileSync } from 'node:child_process';
import { CELL_MODEL_DIR, keepCellModel } from '../model/bundle.ts';
import { StageSteps } from '../tracking/steps.ts';
import { tableMetrics } from '../tracking/summary.ts';
import { trackedCell, trackedInputs, trackedModel, trackedSummary } from './tracked.ts';

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
}

interface RunManifest {
  recipe: string;
  title: string;
  file: string;
  scale: string;
  seed: number;
  /** How many seeds each cell runs (absent in runs of versions before seeds: one). */
  seeds: number;
  backend: string;
  started: string;
  finished?: string;
  status: 'running' | 'interrupted' | 'finished' | 'failed';
  config_hash: string;
  cells: string[];
}

/**
 * What a resumed run must share with the run it continues: every cell's settings. How many seeds
 * it runs is not among them (no training depends on it): a run resumed with a larger --seeds keeps
 * the seeds it finished and adds the others, and a run of a version before seeds resumes as seed 0.
 */
function configHash(recipe: ResolvedRecipe): string {
  const settings = ({ seeds: _seeds, ...rest }: CellConfig) => rest;
  return hashOf(recipe.cells.map((c) => ({ id: c.id, config: settings(c.config) })) as never);
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

/** What a run shares while its cells train: where it writes, how it reports, whether to stop. */
interface RunContext {
  readonly recipe: ResolvedRecipe;
  readonly opts: RunOptions;
  readonly dir: string;
  /** Each cell's folder name under cells/. */
  readonly folders: ReadonlyMap<string, string>;
  readonly progress: Progress;
  readonly tracker: Tracker;
  readonly stopRequested: () => boolean;
  readonly started: number;
  /** Seeds of cells trained in this run so far (not the ones a resume kept), for the ETA. */
  ran: number;
}

/** One seed of one cell: the cell with that seed in its config, which seed, its folder and its place in the run. */
interface SeedRun {
  /** The cell, its config's seed this seed's (seed k is the cell's seed + k; seed 0 the cell's own). */
  readonly cell: ResolvedCell;
  readonly seedIndex: number;
  /** cells/<cell>/seed-<k>. */
  readonly dir: string;
  /** Its place in the run's order, from 0 (every cell's seed 0, then every cell's seed 1, …). */
  readonly position: number;
}

type CellOutcome =
  { readonly status: 'done'; readonly metrics: CellMetrics } | { readonly status: 'failed'; readonly error: string } | { readonly status: 'interrupted' };

/** The signals that stop a run cleanly (SIGTERM: SLURM and container runtimes; SIGHUP: a closed terminal), and their exit status. */
const STOP_SIGNALS = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
type StopSignal = keyof typeof STOP_SIGNALS;

export async function runRecipe(recipe: ResolvedRecipe, opts: RunOptions): Promise<number> {
  const progress = new Progress();
  checkOutRoot(opts.outRoot);
  const { dir, resumed } = openRunDir(recipe, opts);
  const unlock = lockRunDir(dir, (t) => progress.log(t));
  try {
    return await runLocked(recipe, opts, progress, dir, resumed);
  } finally {
    unlock();
  }
}

async function runLocked(recipe: ResolvedRecipe, opts: RunOptions, progress: Progress, dir: string, resumed: boolean): Promise<number> {
  const cleaned = removeStaleTemporaries(opts.outRoot);
  if (cleaned.files)
    progress.log(
      `ssfer: removed ${cleaned.files} temporary file${cleaned.files === 1 ? '' : 's'} (${(cleaned.bytes / 2 ** 20).toFixed(1)} MiB) that killed runs left under ${opts.outRoot}`,
    );
  const folders = cellFolders(recipe, dir, resumed);
  const backend = await chooseBackend(opts.backend, progress);
  lendCredentials(recipe);
  progress.log(`ssfer: ${recipe.title}`);
  progress.log(
    `ssfer: ${recipe.cells.length} cells · scale ${recipe.scale} · seed ${recipe.seed} · backend ${backend} · ${resumed ? 'resuming' : 'writing'} ${dir}`,
  );
  const manifest = writeManifest(recipe, dir, backend);
  const tracker = await startTracker(recipe, dir, backend, manifest);
  if (recipe.seeds > 1)
    progress.log(`ssfer: ${recipe.seeds} seeds per cell (${recipe.seed}…${seedOf(recipe.seed, recipe.seeds - 1)}): every cell's seed 0, then seed 1, …`);
  const outcome = await profiled(opts, dir, progress, () => runCells({ recipe, opts, dir, folders, progress, tracker, resumed }));
  return finishRun(recipe, opts, { dir, backend, manifest, tracker, progress }, outcome);
}

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

interface CellsOutcome {
  /** Per cell, how each of its seeds ended (null: not run), in seed order. */
  readonly results: Map<string, SeedResult[]>;
  /** Per cell, each finished seed's metrics (null: not finished), in seed order. */
  readonly metricsOf: Map<string, (CellMetrics | null)[]>;
  /** The cells whose runs this run started (the tracker closes their runs with their figures over the seeds). */
  readonly started: Set<string>;
  readonly failed: number;
  /** The signal that stopped the run before its last cell; null when every cell ran. */
  readonly interruptedBy: StopSignal | null;
}

/**
 * Every cell's seed 0 in order, then every cell's seed 1, … (a resumed run keeps the seeds that
 * finished). What cells share (data, pre-training, linear probes) is per seed, so each seed has a
 * run scope of its own: the shared pre-training of seed k serves every cell's seed k. SIGINT,
 * SIGTERM and SIGHUP stop it after the current step.
 */
async function runCells(given: Omit<RunContext, 'stopRequested' | 'started' | 'ran'> & { resumed: boolean }): Promise<CellsOutcome> {
  const { recipe, dir, folders, progress, resumed } = given;
  let stopRequested: StopSignal | null = null;
  const onSignal = (signal: StopSignal) => {
    if (stopRequested) process.exit(STOP_SIGNALS[signal]);
    stopRequested = signal;
    progress.log(`ssfer: ${signal}: stopping after the current step (send it again to quit at once); finished cells and checkpoints are kept`);
  };
  for (const signal of Object.keys(STOP_SIGNALS) as StopSignal[]) process.on(signal, onSignal);
  const run: RunContext = { ...given, stopRequested: () => stopRequested !== null, started: Date.now(), ran: 0 };
  const results: CellsOutcome['results'] = new Map(recipe.cells.map((c) => [c.id, Array<SeedResult>(recipe.seeds).fill(null)]));
  const metricsOf: CellsOutcome['metricsOf'] = new Map(recipe.cells.map((c) => [c.id, Array<CellMetrics | null>(recipe.seeds).fill(null)]));
  const started = new Set<string>();
  let failed = 0;
  try {
    for (let k = 0; k < recipe.seeds; k++) {
      const scope = new RunScope(recipe.registry);
      try {
        for (const [i, cell] of recipe.cells.entries()) {
          const seeded: SeedRun = {
            cell: { ...cell, config: { ...cell.config, seed: seedOf(cell.config.seed, k) } },
            seedIndex: k,
            dir: seedFolder(path.join(dir, 'cells', folders.get(cell.id)!), k, resumed),
            position: k * recipe.cells.length + i,
          };
          const kept = resumed ? finishedMetrics(seeded.dir, cell.id, seeded.cell.config.seed) : null;
          if (!kept && !stopRequested) started.add(cell.id);
          const one: CellOutcome = kept ? { status: 'done', metrics: kept } : stopRequested ? { status: 'interrupted' } : await trainCell(run, scope, seeded);
          if (one.status === 'interrupted') return { results, metricsOf, started, failed, interruptedBy: stopRequested ?? 'SIGINT' };
          if (one.status === 'failed') {
            failed++;
            results.get(cell.id)![k] = { error: one.error };
            continue;
          }
          results.get(cell.id)![k] = one.metrics;
          metricsOf.get(cell.id)![k] = one.metrics;
        }
      } finally {
        scope.close();
      }
    }
    return { results, metricsOf, started, failed, interruptedBy: null };
  } finally {
    for (const signal of Object.keys(STOP_SIGNALS) as StopSignal[]) process.off(signal, onSignal);
    progress.done();
  }
}

/** The table (JSON, Markdown, printed), each cell's figures over its seeds and the run's end to the tracker, run.json's status and the exit status; an interrupted run prints how to continue it. */
async function finishRun(
  recipe: ResolvedRecipe,
  opts: RunOptions,
  at: { dir: string; backend: string; manifest: RunManifest; tracker: Tracker; progress: Progress },
  { results, metricsOf, started, failed, interruptedBy }: CellsOutcome,
): Promise<number> {
  const { dir, backend, manifest, tracker, progress } = at;
  const notes = tableNotes(recipe.cells.map((c) => ({ id: c.id, runs: metricsOf.get(c.id)! })));
  const table = buildTable(recipe, results, { backend, notes });
  writeJson(path.join(dir, 'table.json'), table);
  writeAtomic(path.join(dir, 'table.md'), tableMarkdown(table));
  const estimates = estimateCells(recipe, results);
  for (const c of recipe.cells) {
    const e = estimates.get(c.id)!;
    if (!started.has(c.id) && e.runs.every((v) => v === null) && e.status !== 'failed') continue; // nothing of it ran, now or before
    await tracker.summarizeCell(trackedSummary(c), {
      metrics: summaryMetrics(e),
      status: e.status === 'done' ? 'FINISHED' : e.status === 'failed' ? 'FAILED' : 'KILLED',
    });
  }
  await tracker.endRun({
    artifacts: ['table.md', 'table.json', 'recipe.resolved.json'].map((f) => path.resolve(dir, f)),
    status: interruptedBy ? 'KILLED' : failed ? 'FAILED' : 'FINISHED',
    metrics: tableMetrics(table),
  });
  writeJson(path.join(dir, 'run.json'), {
    ...manifest,
    status: interruptedBy ? 'interrupted' : failed ? 'failed' : 'finished',
    ...(interruptedBy ? { signal: interruptedBy } : {}),
    finished: new Date().toISOString(),
  });

  if (opts.json) process.stdout.write(`${JSON.stringify(table)}\n`);
  else process.stdout.write(`\n${tableText(table)}\nresults: ${dir}\n`);
  if (interruptedBy) {
    const command = [...(opts.resumeWith ?? [path.relative(process.cwd(), recipe.file), '--scale', recipe.scale]), '--resume', dir];
    const kept = [...results.values()].flat().filter((r) => r !== null).length;
    const of =
      recipe.seeds > 1
        ? `${recipe.cells.length * recipe.seeds} seed runs (${recipe.cells.length} cells × ${recipe.seeds} seeds)`
        : `${recipe.cells.length} cells`;
    progress.log(`ssfer: interrupted; ${kept} of ${of} kept. Continue with: ssfer run ${command.map(shellWord).join(' ')}`);
    return STOP_SIGNALS[interruptedBy];
  }
  return failed ? 1 : 0;
}

/**
 * A cell's figures over its seeds as the tracker records them, in the units of each seed's
 * test_accuracy (a fraction): the mean, sample std and 95 % t-interval, how many seeds finished,
 * the paired difference to the baseline row with its interval, and each health figure's mean.
 */
function summaryMetrics(e: CellEstimate): Record<string, number> {
  const out: Record<string, number> = { seeds_finished: e.runs.filter((v) => v !== null).length };
  if (e.accuracy) {
    out.test_accuracy = e.accuracy.mean / 100;
    if (e.accuracy.std !== null) out.test_accuracy_std = e.accuracy.std / 100;
    if (e.accuracy.ci95) [out.test_accuracy_ci95_low, out.test_accuracy_ci95_high] = e.accuracy.ci95.map((v) => v / 100);
  }
  if (e.diff) {
    out.diff_to_baseline = e.diff.mean / 100;
    if (e.diff.ci95) [out.diff_to_baseline_ci95_low, out.diff_to_baseline_ci95_high] = e.diff.ci95.map((v) => v / 100);
  }
  for (const [k, v] of Object.entries(e.health ?? {})) out[`health.${k}`] = v;
  return out;
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

/** Writes run.json (status running) and the resolved recipe; returns the manifest. */
function writeManifest(recipe: ResolvedRecipe, dir: string, backend: string): RunManifest {
  const manifest: RunManifest = {
    recipe: recipe.name,
    title: recipe.title,
    file: path.relative(process.cwd(), recipe.file),
    scale: recipe.scale,
    seed: recipe.seed,
    seeds: recipe.seeds,
    backend,
    started: new Date().toISOString(),
    status: 'running',
    config_hash: configHash(recipe),
    cells: recipe.cells.map((c) => c.id),
  };
  writeJson(path.join(dir, 'run.json'), manifest);
  const cells = recipe.cells.map((c) => ({ id: c.id, config: c.config }));
  writeJson(path.join(dir, 'recipe.resolved.json'), {
    recipe: recipe.name,
    title: recipe.title,
    description: recipe.description,
    scale: recipe.scale,
    seed: recipe.seed,
    seeds: recipe.seeds,
    reference: recipe.reference ?? null,
    cells,
  });
  return manifest;
}

/**
 * A seed of a cell an earlier run finished (its metrics.json is written last, with the cell's id
 * and the seed), when resuming. Runs of versions before seeds wrote no seed: their one is seed 0.
 */
function finishedMetrics(seedDir: string, id: string, seed: number): CellMetrics | null {
  const file = path.join(seedDir, 'metrics.json');
  if (!fs.existsSync(file)) return null;
  const metrics = JSON.parse(fs.readFileSync(file, 'utf8')) as CellMetrics;
  return metrics.id === id && (metrics.seed ?? seed) === seed ? metrics : null;
}

/**
 * Each cell's folder name. A resumed run of an older version keeps the folders it wrote under the
 * older names, unless two of its cells met in one of them: then nothing there can be trusted.
 */
function cellFolders(recipe: ResolvedRecipe, dir: string, resumed: boolean): Map<string, string> {
  const folders = new Map(recipe.cells.map((c) => [c.id, cellFolder(c.id)]));
  if (!resumed) return folders;
  const legacyOwners = new Map<string, string[]>();
  for (const c of recipe.cells) legacyOwners.set(legacyCellFolder(c.id), [...(legacyOwners.get(legacyCellFolder(c.id)) ?? []), c.id]);
  for (const c of recipe.cells) {
    const legacy = legacyCellFolder(c.id);
    if (legacy === folders.get(c.id) || fs.existsSync(path.join(dir, 'cells', folders.get(c.id)!)) || !fs.existsSync(path.join(dir, 'cells', legacy))) continue;
    const owners = legacyOwners.get(legacy)!;
    if (owners.length > 1) {
      throw new UsageError(
        `--resume ${dir}: cells ${owners.map((o) => `'${o}'`).join(' and ')} share the folder cells/${legacy} (an older ssfer wrote it, whose folder names were not one-to-one), so its results cannot be told apart; run without --resume to start a new run`,
      );
    }
    folders.set(c.id, legacy);
  }
  return folders;
}

/** The tracker's credentials, taken out of the recipe's URIs, go to its client through MLflow's own variables, never into a file. */
function lendCredentials(recipe: ResolvedRecipe): void {
  if (process.env.MLFLOW_TRACKING_TOKEN || process.env.MLFLOW_TRACKING_USERNAME) return;
  const uri = (recipe.cells[0]!.config.tracking as { uri?: unknown }).uri;
  const credentials = typeof uri === 'string' ? recipe.credentials.get(uri) : undefined;
  if (!credentials) return;
  process.env.MLFLOW_TRACKING_USERNAME = credentials.username;
  process.env.MLFLOW_TRACKING_PASSWORD = credentials.password;
}

/** A word as a POSIX shell reads it back: quoted when it has anything but safe characters. */
function shellWord(w: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/** Trains one seed of a cell and writes its outputs in the seed's folder; a failure is recorded there, the run goes on. */
async function trainCell(run: RunContext, scope: RunScope, seeded: SeedRun): Promise<CellOutcome> {
  const { recipe, opts, tracker, progress } = run;
  const { cell, dir: cellDir } = seeded;
  const ref = { id: cell.id, seedIndex: seeded.seedIndex };
  const name = recipe.seeds > 1 ? `${cell.id} seed ${seeded.seedIndex}` : cell.id;
  await tracker.startCell(trackedCell(recipe, cell, seeded.seedIndex));
  try {
    const { metrics, log, pretrainPicture, dataPicture, tuning, files } = await runCell(scope, recipe, cell, {
      name,
      shouldStop: run.stopRequested,
      note: (t) => progress.log(t),
      stageCacheDir: path.join(opts.outRoot, '.cache', 'stages'),
      dataCacheDir: path.join(opts.outRoot, '.cache', 'data'),
      checkpointDir: path.join(cellDir, 'checkpoints'),
      keepModel: (model, about) => keepCellModel(path.join(cellDir, CELL_MODEL_DIR), model, { ...about, recipe: recipe.name }),
      onStep: stepReporter(run, seeded),
    });
    run.ran++;
    if (pretrainPicture) writeAtomic(path.join(cellDir, 'pretrain.png'), Buffer.from(pretrainPicture));
    if (dataPicture) writeAtomic(path.join(cellDir, 'data.png'), Buffer.from(dataPicture));
    if (tuning) await writeTuning(cellDir, cell.id, tuning);
    for (const f of files ?? []) writeAtomic(path.join(cellDir, f.name), typeof f.data === 'string' ? f.data : Buffer.from(f.data));
    await traced('outputs', () => writeCellOutputs(cellDir, metrics, log));
    // The seed is final: its epoch checkpoints are no longer needed to resume.
    fs.rmSync(path.join(cellDir, 'checkpoints'), { recursive: true, force: true });
    await tracker.endCell(ref, {
      metrics: {
        test_accuracy: metrics.accuracy,
        test_accuracy_raw: metrics.accuracy_raw,
        labeled_count: metrics.labeled_count,
        seconds: metrics.seconds,
        // MLflow takes finite numbers only (a NaN pseudo-label accuracy means none passed).
        ...Object.fromEntries(
          Object.entries(metrics.health)
            .filter(([, v]) => Number.isFinite(v))
            .map(([k, v]) => [`health.${k}`, v]),
        ),
        ...analysisFigures(metrics),
      },
      artifacts: fs
        .readdirSync(cellDir)
        .map((f) => path.resolve(cellDir, f))
        .filter((f) => fs.statSync(f).isFile()),
      status: 'FINISHED',
      inputs: trackedInputs(metrics),
      model: await trackedModel(tracker, recipe, cellDir, (t) => progress.log(t)),
      stages: metrics.stages,
    });
    progress.log(
      `  ${name}: accuracy ${(metrics.accuracy * 100).toFixed(2)}% (paper ${fmtRef(recipe, cell.row, cell.column)}) in ${duration(metrics.seconds)} · tensors ${tf.memory().numTensors}`,
    );
    return { status: 'done', metrics };
  } catch (err) {
    if (err instanceof Interrupted) {
      await tracker.endCell(ref, { metrics: {}, artifacts: [], status: 'KILLED' });
      return { status: 'interrupted' };
    }
    await tracker.endCell(ref, { metrics: {}, artifacts: [], status: 'FAILED' });
    const message = (err as Error).message;
    writeJson(path.join(cellDir, 'error.json'), { id: cell.id, seed: cell.config.seed, error: message, stack: (err as Error).stack });
    progress.log(`  ${name}: FAILED — ${message}`);
    return { status: 'failed', error: message };
  }
}

/** A seed's step hook: its figures to the tracker every `tracker.every` steps, and the progress line with an ETA. */
function stepReporter(run: RunContext, seeded: SeedRun): CellHooks['onStep'] {
  const { recipe, tracker, progress } = run;
  const { cell } = seeded;
  const ref = { id: cell.id, seedIndex: seeded.seedIndex };
  const cellStart = Date.now();
  const done = run.ran;
  const total = recipe.cells.length * recipe.seeds;
  const remaining = total - seeded.position;
  const what = recipe.seeds > 1 ? `run ${seeded.position + 1}/${total} (cell × seed)` : `cell ${seeded.position + 1}/${total}`;
  const name = recipe.seeds > 1 ? `${cell.id} seed ${seeded.seedIndex}` : cell.id;
  const steps = new StageSteps();
  return (stage, l, plan) => {
    const step = steps.at(stage, l.step);
    if (step % tracker.every === 0 || l.step === plan.totalSteps) {
      const figures: Record<string, number> = {};
      for (const [k, v] of Object.entries(l.metrics)) if (Number.isFinite(v)) figures[`${stage}/${k}`] = v;
      tracker.logMetrics(ref, figures, step);
    }
    const cellFrac = l.step / plan.totalSteps;
    const perCell = done > 0 ? (cellStart - run.started) / 1000 / done : (Date.now() - cellStart) / 1000 / Math.max(cellFrac, 1e-3);
    const eta = perCell * (remaining - cellFrac);
    progress.update(
      `${what} ${bar(cellFrac, 12)} ${name} · ${stage} epoch ${l.epoch + 1}/${plan.epochs} step ${l.step}/${plan.totalSteps} · loss ${l.metrics.loss!.toFixed(3)} · ETA ${duration(eta)}`,
    );
  };
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
