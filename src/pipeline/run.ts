import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UsageError } from '../core/errors.ts';
import { writeAtomic, writeJson } from '../core/files.ts';
import { selectBackend } from '../engine/backend.ts';
import type { Tracker } from '../contracts/tracker.ts';
import type { ResolvedCell, ResolvedRecipe } from '../recipe/recipe.ts';
import { buildTable, tableMarkdown, tableText } from '../report/table.ts';
import { Interrupted, runCell, type CellHooks, type CellMetrics } from './cell.ts';
import { analysisFigures, fmtRef, tableNotes, writeCellOutputs, writeTuning } from './outputs.ts';
import { RunScope } from './scope.ts';
import { bar, duration, Progress } from './progress.ts';
import { cellFolder, checkOutRoot, latestRunDir, legacyCellFolder, lockRunDir, makeRunDir, removeStaleTemporaries } from './results.ts';
import { hashOf } from '../core/json.ts';
import { setTracer, traced } from '../core/trace.ts';
import { formatProfile, RunProfile } from '../engine/profile.ts';
import { execFileSync } from 'node:child_process';
import { CELL_MODEL_DIR, keepCellModel } from '../model/bundle.ts';

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
  backend: string;
  started: string;
  finished?: string;
  status: 'running' | 'interrupted' | 'finished' | 'failed';
  config_hash: string;
  cells: string[];
}

function configHash(recipe: ResolvedRecipe): string {
  return hashOf(recipe.cells.map((c) => ({ id: c.id, config: c.config })) as never);
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
  readonly scope: RunScope;
  readonly stopRequested: () => boolean;
  readonly started: number;
  /** Cells trained in this run so far (not the ones a resume kept), for the ETA. */
  ran: number;
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
    backend,
    dir: path.resolve(dir),
    file: manifest.file,
    commit: gitCommit(),
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
  readonly results: Map<string, CellMetrics | { error: string }>;
  readonly metricsOf: CellMetrics[];
  readonly failed: number;
  /** The signal that stopped the run before its last cell; null when every cell ran. */
  readonly interruptedBy: StopSignal | null;
}

/** Every cell in order (a resumed run keeps the finished ones); SIGINT, SIGTERM and SIGHUP stop it after the current step. */
async function runCells(given: Omit<RunContext, 'scope' | 'stopRequested' | 'started' | 'ran'> & { resumed: boolean }): Promise<CellsOutcome> {
  const { recipe, dir, folders, progress, resumed } = given;
  let stopRequested: StopSignal | null = null;
  const onSignal = (signal: StopSignal) => {
    if (stopRequested) process.exit(STOP_SIGNALS[signal]);
    stopRequested = signal;
    progress.log(`ssfer: ${signal}: stopping after the current step (send it again to quit at once); finished cells and checkpoints are kept`);
  };
  for (const signal of Object.keys(STOP_SIGNALS) as StopSignal[]) process.on(signal, onSignal);
  const run: RunContext = { ...given, scope: new RunScope(recipe.registry), stopRequested: () => stopRequested !== null, started: Date.now(), ran: 0 };
  const results: CellsOutcome['results'] = new Map();
  const metricsOf: CellMetrics[] = [];
  let failed = 0;
  try {
    for (const [i, cell] of recipe.cells.entries()) {
      const kept = resumed ? finishedMetrics(path.join(dir, 'cells', folders.get(cell.id)!), cell.id) : null;
      const one: CellOutcome = kept ? { status: 'done', metrics: kept } : stopRequested ? { status: 'interrupted' } : await trainCell(run, cell, i);
      if (one.status === 'interrupted') return { results, metricsOf, failed, interruptedBy: stopRequested ?? 'SIGINT' };
      if (one.status === 'failed') {
        failed++;
        results.set(cell.id, { error: one.error });
        continue;
      }
      results.set(cell.id, one.metrics);
      metricsOf.push(one.metrics);
    }
    return { results, metricsOf, failed, interruptedBy: null };
  } finally {
    for (const signal of Object.keys(STOP_SIGNALS) as StopSignal[]) process.off(signal, onSignal);
    progress.done();
    run.scope.close();
  }
}

/** The table (JSON, Markdown, printed), the tracker's end, run.json's status and the exit status; an interrupted run prints how to continue it. */
async function finishRun(
  recipe: ResolvedRecipe,
  opts: RunOptions,
  at: { dir: string; backend: string; manifest: RunManifest; tracker: Tracker; progress: Progress },
  { results, metricsOf, failed, interruptedBy }: CellsOutcome,
): Promise<number> {
  const { dir, backend, manifest, tracker, progress } = at;
  const table = buildTable(recipe, results, { backend, notes: tableNotes(metricsOf) });
  writeJson(path.join(dir, 'table.json'), table);
  writeAtomic(path.join(dir, 'table.md'), tableMarkdown(table));
  await tracker.endRun({
    artifacts: ['table.md', 'table.json', 'recipe.resolved.json'].map((f) => path.resolve(dir, f)),
    status: interruptedBy ? 'KILLED' : failed ? 'FAILED' : 'FINISHED',
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
    progress.log(`ssfer: interrupted; ${results.size} of ${recipe.cells.length} cells kept. Continue with: ssfer run ${command.map(shellWord).join(' ')}`);
    return STOP_SIGNALS[interruptedBy];
  }
  return failed ? 1 : 0;
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
    reference: recipe.reference ?? null,
    cells,
  });
  return manifest;
}

/** A cell an earlier run finished (its metrics.json is written last, with the cell's id), when resuming. */
function finishedMetrics(cellDir: string, id: string): CellMetrics | null {
  const file = path.join(cellDir, 'metrics.json');
  if (!fs.existsSync(file)) return null;
  const metrics = JSON.parse(fs.readFileSync(file, 'utf8')) as CellMetrics;
  return metrics.id === id ? metrics : null;
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

/** Trains one cell and writes its outputs; a failure is recorded beside the cell, the run goes on. */
async function trainCell(run: RunContext, cell: ResolvedCell, index: number): Promise<CellOutcome> {
  const { recipe, opts, tracker, progress } = run;
  const cellDir = path.join(run.dir, 'cells', run.folders.get(cell.id)!);
  await tracker.startCell({ id: cell.id, config: cell.config });
  try {
    const { metrics, log, pretrainPicture, dataPicture, tuning, files } = await runCell(run.scope, recipe, cell, {
      shouldStop: run.stopRequested,
      note: (t) => progress.log(t),
      stageCacheDir: path.join(opts.outRoot, '.cache', 'stages'),
      dataCacheDir: path.join(opts.outRoot, '.cache', 'data'),
      checkpointDir: path.join(cellDir, 'checkpoints'),
      keepModel: (model, about) => keepCellModel(path.join(cellDir, CELL_MODEL_DIR), model, { ...about, recipe: recipe.name }),
      onStep: stepReporter(run, cell, index),
    });
    run.ran++;
    if (pretrainPicture) writeAtomic(path.join(cellDir, 'pretrain.png'), Buffer.from(pretrainPicture));
    if (dataPicture) writeAtomic(path.join(cellDir, 'data.png'), Buffer.from(dataPicture));
    if (tuning) await writeTuning(cellDir, cell.id, tuning);
    for (const f of files ?? []) writeAtomic(path.join(cellDir, f.name), typeof f.data === 'string' ? f.data : Buffer.from(f.data));
    await traced('outputs', () => writeCellOutputs(cellDir, metrics, log));
    // The cell is final: its epoch checkpoints are no longer needed to resume.
    fs.rmSync(path.join(cellDir, 'checkpoints'), { recursive: true, force: true });
    await tracker.endCell(cell.id, {
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
    });
    progress.log(
      `  ${cell.id}: accuracy ${(metrics.accuracy * 100).toFixed(2)}% (paper ${fmtRef(recipe, cell.row, cell.column)}) in ${duration(metrics.seconds)} · tensors ${tf.memory().numTensors}`,
    );
    return { status: 'done', metrics };
  } catch (err) {
    if (err instanceof Interrupted) {
      await tracker.endCell(cell.id, { metrics: {}, artifacts: [], status: 'KILLED' });
      return { status: 'interrupted' };
    }
    await tracker.endCell(cell.id, { metrics: {}, artifacts: [], status: 'FAILED' });
    const message = (err as Error).message;
    writeJson(path.join(cellDir, 'error.json'), { id: cell.id, error: message, stack: (err as Error).stack });
    progress.log(`  ${cell.id}: FAILED — ${message}`);
    return { status: 'failed', error: message };
  }
}

/** A cell's step hook: its figures to the tracker every `tracker.every` steps, and the progress line with an ETA. */
function stepReporter(run: RunContext, cell: ResolvedCell, index: number): CellHooks['onStep'] {
  const { recipe, tracker, progress } = run;
  const cellStart = Date.now();
  const done = run.ran;
  const remainingCells = recipe.cells.length - index;
  let trackedStep = 0;
  return (stage, l, plan) => {
    trackedStep++;
    if (trackedStep % tracker.every === 0 || l.step === plan.totalSteps) {
      const figures: Record<string, number> = {};
      for (const [k, v] of Object.entries(l.metrics)) if (Number.isFinite(v)) figures[`${stage}/${k}`] = v;
      tracker.logMetrics(cell.id, figures, trackedStep);
    }
    const cellFrac = l.step / plan.totalSteps;
    const perCell = done > 0 ? (cellStart - run.started) / 1000 / done : (Date.now() - cellStart) / 1000 / Math.max(cellFrac, 1e-3);
    const eta = perCell * (remainingCells - cellFrac);
    progress.update(
      `cell ${index + 1}/${recipe.cells.length} ${bar(cellFrac, 12)} ${cell.id} · ${stage} epoch ${l.epoch + 1}/${plan.epochs} step ${l.step}/${plan.totalSteps} · loss ${l.metrics.loss!.toFixed(3)} · ETA ${duration(eta)}`,
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
