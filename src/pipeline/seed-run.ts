import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { writeAtomic, writeJson } from '../core/files.ts';
import { traced } from '../core/trace.ts';
import type { Tracker } from '../contracts/tracker.ts';
import type { ResolvedRecipe } from '../recipe/recipe.ts';
import { CELL_MODEL_DIR, keepCellModel } from '../model/bundle.ts';
import { Interrupted, runCell, type CellHooks, type CellMetrics } from './cell.ts';
import { analysisFigures, fmtRef, writeCellOutputs, writeTuning } from './outputs.ts';
import { bar, duration } from '../core/format.ts';
import { eta, type Progress } from './progress.ts';
import type { RunScope } from './scope.ts';
import { StageSteps } from '../tracking/steps.ts';
import { trackedCell, trackedInputs, trackedModel } from './tracked.ts';
import type { Unit } from './units.ts';

/** The signals that stop a run or a worker cleanly (SIGTERM: SLURM and container runtimes; SIGHUP: a closed terminal), and their exit status. */
export const STOP_SIGNALS = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
export type StopSignal = keyof typeof STOP_SIGNALS;

/**
 * Stops cleanly on SIGINT, SIGTERM and SIGHUP: after the first, `signal()` names it and the work
 * stops after its current step (the epoch checkpoints are kept); a second quits at once. Returns
 * the signal seen (null: none) and the function that removes the handlers.
 */
export function stopOnSignals(
  note: (text: string) => void,
  what = 'finished cells and checkpoints are kept',
): { signal: () => StopSignal | null; off: () => void } {
  let seen: StopSignal | null = null;
  const onSignal = (signal: StopSignal) => {
    if (seen) process.exit(STOP_SIGNALS[signal]);
    seen = signal;
    note(`ssfer: ${signal}: stopping after the current step (send it again to quit at once); ${what}`);
  };
  for (const signal of Object.keys(STOP_SIGNALS) as StopSignal[]) process.on(signal, onSignal);
  return { signal: () => seen, off: () => Object.keys(STOP_SIGNALS).forEach((s) => process.off(s, onSignal)) };
}

/** What the units trained in one process share: where caches live, how it reports, whether to stop. */
export interface RunContext {
  readonly recipe: ResolvedRecipe;
  /** The results root: the stage and data caches are under its .cache/. */
  readonly outRoot: string;
  readonly progress: Progress;
  readonly tracker: Tracker;
  readonly stopRequested: () => boolean;
  /** Units trained by this process so far, and their seconds without the shared stages, for the ETA. */
  ran: number;
  ranSeconds: number;
  /**
   * Where other workers take units from the same run: how many units this process may expect to
   * train after its current one (the units nobody has started, divided among the units running).
   * Absent: the units after the current one in order are all this process's.
   */
  readonly unitsAfter?: () => number;
}

export type CellOutcome =
  { readonly status: 'done'; readonly metrics: CellMetrics } | { readonly status: 'failed'; readonly error: string } | { readonly status: 'interrupted' };

/** Where the stage cache of a results root is: pre-trainings shared by runs and processes. */
export function stageCacheDir(outRoot: string): string {
  return path.join(outRoot, '.cache', 'stages');
}

/** Trains one seed of a cell and writes its outputs in the seed's folder; a failure is recorded there (error.json). */
export async function trainCell(run: RunContext, scope: RunScope, unit: Unit): Promise<CellOutcome> {
  const { recipe, outRoot, tracker, progress } = run;
  const { cell, dir: cellDir } = unit;
  const ref = { id: cell.id, seedIndex: unit.seedIndex };
  const name = unit.label;
  await tracker.startCell(trackedCell(recipe, cell, unit.seedIndex));
  const reporter = stepReporter(run, unit);
  try {
    const { metrics, log, pretrainPicture, dataPicture, tuning, files } = await runCell(scope, recipe, cell, {
      name,
      shouldStop: run.stopRequested,
      note: (t) => progress.log(t),
      stageCacheDir: stageCacheDir(outRoot),
      dataCacheDir: path.join(outRoot, '.cache', 'data'),
      checkpointDir: path.join(cellDir, 'checkpoints'),
      keepModel: (model, about) => keepCellModel(path.join(cellDir, CELL_MODEL_DIR), model, { ...about, recipe: recipe.name }),
      onStep: reporter.onStep,
    });
    if (pretrainPicture) writeAtomic(path.join(cellDir, 'pretrain.png'), Buffer.from(pretrainPicture));
    if (dataPicture) writeAtomic(path.join(cellDir, 'data.png'), Buffer.from(dataPicture));
    if (tuning) await writeTuning(cellDir, cell.id, tuning);
    for (const f of files ?? []) writeAtomic(path.join(cellDir, f.name), typeof f.data === 'string' ? f.data : Buffer.from(f.data));
    await traced('outputs', () => writeCellOutputs(cellDir, metrics, log));
    // The seed is final: its epoch checkpoints are no longer needed to resume, nor an earlier attempt's error.
    fs.rmSync(path.join(cellDir, 'checkpoints'), { recursive: true, force: true });
    fs.rmSync(path.join(cellDir, 'error.json'), { force: true });
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
        .filter((f) => f !== 'attempts.jsonl' && f !== 'unit.lock')
        .map((f) => path.resolve(cellDir, f))
        .filter((f) => fs.statSync(f).isFile()),
      status: 'FINISHED',
      inputs: trackedInputs(metrics),
      model: await trackedModel(tracker, recipe, cellDir, (t) => progress.log(t)),
      stages: metrics.stages,
    });
    run.ran++;
    run.ranSeconds += reporter.ownSeconds();
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

/** The stage whose result later units read from the stage cache instead of computing it again. */
const SHARED_STAGE = 'pretrain';

/**
 * A seed's step hook: its figures to the tracker every `tracker.every` steps, and the progress line
 * with an ETA; and the unit's own seconds so far, for the ETA of the units after it. A unit's own
 * seconds leave out its shared stage (pre-training, computed once for the units that share it)
 * and, in the first unit of a process, the time before its first step (loading the data the
 * process keeps, or waiting for another process's pre-training).
 */
function stepReporter(run: RunContext, unit: Unit): { onStep: CellHooks['onStep']; ownSeconds: () => number } {
  const { recipe, tracker, progress } = run;
  const { cell } = unit;
  const ref = { id: cell.id, seedIndex: unit.seedIndex };
  const cellStart = Date.now();
  const first = run.ran === 0;
  let ownFrom = cellStart;
  let sharedMs = 0;
  const total = recipe.cells.length * recipe.seeds;
  const remaining = total - unit.position;
  const what = recipe.seeds > 1 ? `run ${unit.position + 1}/${total} (cell × seed)` : `cell ${unit.position + 1}/${total}`;
  const steps = new StageSteps();
  let current = { stage: '', start: cellStart };
  // The unit's own seconds up to `now`: a shared stage still running does not count either.
  const ownSeconds = (now = Date.now()) => Math.max(0, (current.stage === SHARED_STAGE ? current.start : now) - ownFrom - sharedMs) / 1000;
  const onStep: CellHooks['onStep'] = (stage, l, plan) => {
    const now = Date.now();
    if (first && current.stage === '') ownFrom = now;
    if (stage !== current.stage) {
      if (current.stage === SHARED_STAGE) sharedMs += now - current.start;
      current = { stage, start: now };
    }
    const step = steps.at(stage, l.step);
    if (step % tracker.every === 0 || l.step === plan.totalSteps) {
      const figures: Record<string, number> = {};
      for (const [k, v] of Object.entries(l.metrics)) if (Number.isFinite(v)) figures[`${stage}/${k}`] = v;
      tracker.logMetrics(ref, figures, step);
    }
    const cellFrac = l.step / plan.totalSteps;
    const shared = stage === SHARED_STAGE;
    const left = eta({
      finished: run.ran,
      finishedSeconds: run.ranSeconds,
      after: run.unitsAfter?.() ?? remaining - 1,
      unitSeconds: ownSeconds(now),
      stageSeconds: (now - current.start) / 1000,
      stageFraction: cellFrac,
      shared,
    });
    progress.update(
      `${what} ${bar(cellFrac, 12)} ${unit.label} · ${stage} epoch ${l.epoch + 1}/${plan.epochs} step ${l.step}/${plan.totalSteps} · loss ${l.metrics.loss!.toFixed(3)} · ${left.of === 'stage' ? `${stage} ETA` : 'ETA'} ${duration(left.seconds)}`,
    );
  };
  return { onStep, ownSeconds: () => ownSeconds() };
}
