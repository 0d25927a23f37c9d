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
import { fmtRef, tableNotes, writeCellOutputs, writeTuning } from './outputs.ts';
import { RunScope } from './scope.ts';
import { bar, duration, Progress } from './progress.ts';
import { cellFolder, latestRunDir, timestamp } from './results.ts';
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
  if (opts.resume === false) return { dir: path.join(opts.outRoot, recipe.name, timestamp()), resumed: false };
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
  readonly progress: Progress;
  readonly tracker: Tracker;
  readonly scope: RunScope;
  readonly stopRequested: () => boolean;
  readonly started: number;
  /** Cells trained in this run so far (not the ones a resume kept), for the ETA. */
  ran: number;
}

type CellOutcome = { readonly status: 'done'; readonly metrics: CellMetrics } | { readonly status: 'failed'; readonly error: string } | { readonly status: 'interrupted' };

export async function runRecipe(recipe: ResolvedRecipe, opts: RunOptions): Promise<number> {
  const progress = new Progress();
  const backend = await chooseBackend(opts.backend, progress);
  const { dir, resumed } = openRunDir(recipe, opts);
  progress.log(`ssfer: ${recipe.title}`);
  progress.log(`ssfer: ${recipe.cells.length} cells · scale ${recipe.scale} · seed ${recipe.seed} · backend ${backend} · ${resumed ? 'resuming' : 'writing'} ${dir}`);
  const manifest = writeManifest(recipe, dir, backend);
  const tracker = recipe.registry.create('tracker', recipe.cells[0]!.config.tracking, { seed: recipe.seed, scale: recipe.scale, recipeDir: path.dirname(recipe.file) });
  await tracker.startRun({ recipe: recipe.name, title: recipe.title, scale: recipe.scale, seed: recipe.seed, backend, dir: path.resolve(dir), file: manifest.file, commit: gitCommit() });

  // Started after the backend is chosen and before the cells' plugins are created, which it traces.
  const profile = opts.profile ? new RunProfile() : null;
  if (profile) {
    profile.start();
    setTracer(profile);
  }
  let stopRequested = false;
  const onSigint = () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    progress.log('ssfer: stopping after the current step (Ctrl-C again to quit at once); finished cells are kept');
  };
  process.on('SIGINT', onSigint);
  const run: RunContext = { recipe, opts, dir, progress, tracker, scope: new RunScope(recipe.registry), stopRequested: () => stopRequested, started: Date.now(), ran: 0 };
  const results = new Map<string, { accuracy: number; health?: Record<string, number> } | { error: string }>();
  const metricsOf: CellMetrics[] = [];
  let failed = 0;
  let interrupted = false;
  try {
    for (const [i, cell] of recipe.cells.entries()) {
      const kept = resumed ? finishedMetrics(dir, cell.id) : null;
      const outcome: CellOutcome = kept ? { status: 'done', metrics: kept } : stopRequested ? { status: 'interrupted' } : await trainCell(run, cell, i);
      if (outcome.status === 'interrupted') {
        interrupted = true;
        break;
      }
      if (outcome.status === 'failed') {
        failed++;
        results.set(cell.id, { error: outcome.error });
        continue;
      }
      results.set(cell.id, { accuracy: outcome.metrics.accuracy, ...(outcome.metrics.health ? { health: outcome.metrics.health } : {}) });
      metricsOf.push(outcome.metrics);
    }
  } finally {
    process.off('SIGINT', onSigint);
    progress.done();
    run.scope.close();
    if (profile) {
      profile.stop();
      setTracer(null);
    }
  }
  if (profile) {
    const report = profile.report();
    writeJson(path.join(dir, 'profile.json'), report);
    writeAtomic(path.join(dir, 'profile.txt'), `${formatProfile(report)}\n`);
    progress.log(formatProfile(report));
  }

  const table = buildTable(recipe, results, { backend, notes: tableNotes(metricsOf) });
  writeJson(path.join(dir, 'table.json'), table);
  writeAtomic(path.join(dir, 'table.md'), tableMarkdown(table));
  await tracker.endRun({ artifacts: ['table.md', 'table.json', 'recipe.resolved.json'].map((f) => path.resolve(dir, f)), status: interrupted ? 'KILLED' : failed ? 'FAILED' : 'FINISHED' });
  writeJson(path.join(dir, 'run.json'), { ...manifest, status: interrupted ? 'interrupted' : failed ? 'failed' : 'finished', finished: new Date().toISOString() });

  if (opts.json) process.stdout.write(`${JSON.stringify(table)}\n`);
  else process.stdout.write(`\n${tableText(table)}\nresults: ${dir}\n`);
  if (interrupted) {
    progress.log(`ssfer: interrupted; ${results.size} of ${recipe.cells.length} cells kept. Continue with: ssfer run ${path.relative(process.cwd(), recipe.file)} --resume ${dir}${recipe.scale ? ` --scale ${recipe.scale}` : ''}`);
    return 130;
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
  writeJson(path.join(dir, 'recipe.resolved.json'), { recipe: recipe.name, title: recipe.title, description: recipe.description, scale: recipe.scale, seed: recipe.seed, reference: recipe.reference ?? null, cells });
  return manifest;
}

/** A cell an earlier run finished (its metrics.json is written last), when resuming. */
function finishedMetrics(dir: string, id: string): CellMetrics | null {
  const file = path.join(dir, 'cells', cellFolder(id), 'metrics.json');
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as CellMetrics) : null;
}

/** Trains one cell and writes its outputs; a failure is recorded beside the cell, the run goes on. */
async function trainCell(run: RunContext, cell: ResolvedCell, index: number): Promise<CellOutcome> {
  const { recipe, opts, tracker, progress } = run;
  const cellDir = path.join(run.dir, 'cells', cellFolder(cell.id));
  await tracker.startCell({ id: cell.id, config: cell.config });
  try {
    const { metrics, log, pretrainPicture, dataPicture, tuning } = await runCell(run.scope, recipe, cell, {
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
        ...Object.fromEntries(Object.entries(metrics.health).filter(([, v]) => Number.isFinite(v)).map(([k, v]) => [`health.${k}`, v])),
      },
      artifacts: fs
        .readdirSync(cellDir)
        .map((f) => path.resolve(cellDir, f))
        .filter((f) => fs.statSync(f).isFile()),
      status: 'FINISHED',
    });
    progress.log(`  ${cell.id}: accuracy ${(metrics.accuracy * 100).toFixed(2)}% (paper ${fmtRef(recipe, cell.row, cell.column)}) in ${duration(metrics.seconds)} · tensors ${tf.memory().numTensors}`);
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
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: path.dirname(new URL(import.meta.url).pathname), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || null;
  } catch {
    return null;
  }
}
