import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UsageError } from '../cli/args.ts';
import { selectBackend } from '../engine/backend.ts';
import type { ResolvedRecipe } from '../recipe/recipe.ts';
import { confusionSvg, curveSvg, writePng } from '../report/plots.ts';
import { buildTable, tableMarkdown, tableText } from '../report/table.ts';
import { Interrupted, runCell, type CellMetrics, type CellStep } from './cell.ts';
import type { CellTuning } from './tuning.ts';
import { bar, duration, Progress } from './progress.ts';
import { cellFolder, latestRunDir, timestamp, writeAtomic, writeJson } from './results.ts';
import { hashOf } from './stage-keys.ts';
import type { PluginSlot } from '../core/plugin.ts';
import type { Tracker } from '../contracts/tracker.ts';
import { execFileSync } from 'node:child_process';
import { CELL_MODEL_DIR, keepCellModel } from '../model/bundle.ts';

export interface RunOptions {
  backend?: string;
  json: boolean;
  /** false: a new run; true: the latest run of this recipe; a string: that run folder. */
  resume: string | boolean;
  outRoot: string;
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

export async function runRecipe(recipe: ResolvedRecipe, opts: RunOptions): Promise<number> {
  const progress = new Progress();
  let backendName: string;
  try {
    const choice = await selectBackend(opts.backend);
    backendName = choice.name;
    // Say once why the fast CPU kernels are not in use, so a slow run is not a mystery.
    for (const note of choice.notes) if (note.startsWith('native:')) progress.log(`ssfer: ${note}; falling back to ${backendName}`);
  } catch (err) {
    throw new UsageError(`--backend: ${(err as Error).message}`);
  }
  const { dir, resumed } = openRunDir(recipe, opts);
  progress.log(`ssfer: ${recipe.title}`);
  progress.log(`ssfer: ${recipe.cells.length} cells · scale ${recipe.scale} · seed ${recipe.seed} · backend ${backendName} · ${resumed ? 'resuming' : 'writing'} ${dir}`);

  const manifest: RunManifest = {
    recipe: recipe.name,
    title: recipe.title,
    file: path.relative(process.cwd(), recipe.file),
    scale: recipe.scale,
    seed: recipe.seed,
    backend: backendName,
    started: new Date().toISOString(),
    status: 'running',
    config_hash: configHash(recipe),
    cells: recipe.cells.map((c) => c.id),
  };
  writeJson(path.join(dir, 'run.json'), manifest);
  writeJson(path.join(dir, 'recipe.resolved.json'), { recipe: recipe.name, title: recipe.title, description: recipe.description, scale: recipe.scale, seed: recipe.seed, reference: recipe.reference ?? null, cells: recipe.cells.map((c) => ({ id: c.id, config: c.config })) });

  const trackingSlot = (recipe.cells[0]!.config.tracking ?? { use: 'local' }) as PluginSlot;
  const tracker = recipe.registry.create<Tracker & { every?: number }>('tracker', trackingSlot, { seed: recipe.seed, scale: recipe.scale, recipeDir: path.dirname(recipe.file) });
  const logEvery = tracker.every ?? 10;
  await tracker.startRun({ recipe: recipe.name, title: recipe.title, scale: recipe.scale, seed: recipe.seed, backend: backendName, dir: path.resolve(dir), file: manifest.file, commit: gitCommit() });

  let stopRequested = false;
  const onSigint = () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    progress.log('ssfer: stopping after the current step (Ctrl-C again to quit at once); finished cells are kept');
  };
  process.on('SIGINT', onSigint);

  const results = new Map<string, { accuracy: number } | { error: string }>();
  const metricsOf: CellMetrics[] = [];
  let failed = 0;
  let interrupted = false;
  const runStart = Date.now();
  let ranCells = 0;
  try {
    for (const [i, cell] of recipe.cells.entries()) {
      const cellDir = path.join(dir, 'cells', cellFolder(cell.id));
      const metricsFile = path.join(cellDir, 'metrics.json');
      if (resumed && fs.existsSync(metricsFile)) {
        const m = JSON.parse(fs.readFileSync(metricsFile, 'utf8')) as CellMetrics;
        results.set(cell.id, { accuracy: m.accuracy });
        metricsOf.push(m);
        continue;
      }
      if (stopRequested) {
        interrupted = true;
        break;
      }
      const cellStart = Date.now();
      const done = ranCells;
      await tracker.startCell({ id: cell.id, config: cell.config });
      let trackedStep = 0;
      const remainingCells = recipe.cells.length - i;
      try {
        const { metrics, log, pretrainPicture, tuning } = await runCell(recipe, cell, {
          shouldStop: () => stopRequested,
          note: (t) => progress.log(t),
          stageCacheDir: path.join(opts.outRoot, '.cache', 'stages'),
          dataCacheDir: path.join(opts.outRoot, '.cache', 'data'),
          checkpointDir: path.join(cellDir, 'checkpoints'),
          keepModel: (model, about) => keepCellModel(path.join(cellDir, CELL_MODEL_DIR), model, { ...about, recipe: recipe.name }),
          onStep: (stage, l, info) => {
            trackedStep++;
            if (trackedStep % logEvery === 0 || l.step === info.totalSteps) {
              const figures: Record<string, number> = {};
              for (const [k, v] of Object.entries(l)) if (typeof v === 'number' && Number.isFinite(v) && k !== 'step' && k !== 'epoch') figures[`${stage}/${k}`] = v;
              tracker.logMetrics(cell.id, figures, trackedStep);
            }
            const cellFrac = l.step / info.totalSteps;
            const perCell = done > 0 ? (cellStart - runStart) / 1000 / done : ((Date.now() - cellStart) / 1000) / Math.max(cellFrac, 1e-3);
            const eta = perCell * (remainingCells - cellFrac);
            progress.update(
              `cell ${i + 1}/${recipe.cells.length} ${bar(cellFrac, 12)} ${cell.id} · ${stage} epoch ${l.epoch + 1}/${info.epochs} step ${l.step}/${info.totalSteps} · loss ${l.loss.toFixed(3)} · ETA ${duration(eta)}`,
            );
          },
        });
        ranCells++;
        if (pretrainPicture) writeAtomic(path.join(cellDir, 'pretrain.png'), Buffer.from(pretrainPicture));
        if (tuning) await writeTuning(cellDir, cell.id, tuning);
        await writeCellOutputs(cellDir, metrics, log);
        // The cell is final: its epoch checkpoints are no longer needed to resume.
        fs.rmSync(path.join(cellDir, 'checkpoints'), { recursive: true, force: true });
        results.set(cell.id, { accuracy: metrics.accuracy });
        metricsOf.push(metrics);
        await tracker.endCell(cell.id, {
          metrics: { test_accuracy: metrics.accuracy, test_accuracy_raw: metrics.accuracy_raw, labeled_count: metrics.labeled_count, seconds: metrics.seconds },
          artifacts: fs.readdirSync(cellDir).map((f) => path.resolve(cellDir, f)).filter((f) => fs.statSync(f).isFile()),
          status: 'FINISHED',
        });
        progress.log(`  ${cell.id}: accuracy ${(metrics.accuracy * 100).toFixed(2)}% (paper ${fmtRef(recipe, cell.row, cell.column)}) in ${duration(metrics.seconds)} · tensors ${tf.memory().numTensors}`);
      } catch (err) {
        if (err instanceof Interrupted) {
          interrupted = true;
          await tracker.endCell(cell.id, { metrics: {}, artifacts: [], status: 'KILLED' });
          break;
        }
        await tracker.endCell(cell.id, { metrics: {}, artifacts: [], status: 'FAILED' });
        failed++;
        const message = (err as Error).message;
        results.set(cell.id, { error: message });
        writeJson(path.join(cellDir, 'error.json'), { id: cell.id, error: message, stack: (err as Error).stack });
        progress.log(`  ${cell.id}: FAILED — ${message}`);
      }
    }
  } finally {
    process.off('SIGINT', onSigint);
    progress.done();
  }

  const notes = tableNotes(metricsOf);
  const table = buildTable(recipe, results, { backend: backendName, notes });
  writeJson(path.join(dir, 'table.json'), table);
  writeAtomic(path.join(dir, 'table.md'), tableMarkdown(table));
  await tracker.endRun({
    artifacts: ['table.md', 'table.json', 'recipe.resolved.json'].map((f) => path.resolve(dir, f)),
    status: interrupted ? 'KILLED' : failed ? 'FAILED' : 'FINISHED',
  });
  manifest.status = interrupted ? 'interrupted' : failed ? 'failed' : 'finished';
  manifest.finished = new Date().toISOString();
  writeJson(path.join(dir, 'run.json'), manifest);

  if (opts.json) process.stdout.write(`${JSON.stringify(table)}\n`);
  else process.stdout.write(`\n${tableText(table)}\nresults: ${dir}\n`);
  if (interrupted) {
    progress.log(`ssfer: interrupted; ${results.size} of ${recipe.cells.length} cells kept. Continue with: ssfer run ${path.relative(process.cwd(), recipe.file)} --resume ${dir}${recipe.scale ? ` --scale ${recipe.scale}` : ''}`);
    return 130;
  }
  return failed ? 1 : 0;
}

function fmtRef(recipe: ResolvedRecipe, row: number, column: number): string {
  const v = recipe.reference?.values[row]?.[column];
  return v === undefined || v === null ? '—' : `${v.toFixed(2)}%`;
}

/** What a reader must know about the numbers: stand-in data, stages that did not run. */
function tableNotes(metrics: readonly CellMetrics[]): string[] {
  const notes = new Set<string>();
  for (const m of metrics) if (m.dataset.stand_in) notes.add(`${m.dataset.display}: ${m.dataset.stand_in}`);
  // What a loader left out (skipped entries, non-expression rows): older runs' metrics have no notes.
  for (const m of metrics) for (const n of m.dataset.notes ?? []) notes.add(`${m.dataset.display}: ${n}`);
  const skipped = new Set<string>();
  for (const m of metrics) for (const [stage, s] of Object.entries(m.stages)) if (s.startsWith('skipped')) skipped.add(`${stage} (${s.replace(/^skipped: /, '')})`);
  if (skipped.size) notes.add(`stages that did not run: ${[...skipped].join('; ')} — these numbers come from the stages that ran`);
  return [...notes];
}

async function writeCellOutputs(cellDir: string, metrics: CellMetrics, log: readonly CellStep[]): Promise<void> {
  fs.mkdirSync(cellDir, { recursive: true });
  writeAtomic(path.join(cellDir, 'log.jsonl'), log.map((l) => JSON.stringify(l)).join('\n') + '\n');
  writeJson(path.join(cellDir, 'confusion.json'), { classes: metrics.classes, matrix: metrics.confusion, rows: 'true class', columns: 'predicted class' });
  await writePng(confusionSvg(metrics.confusion, metrics.classes, `${metrics.id} — accuracy ${(metrics.accuracy * 100).toFixed(2)}%`), path.join(cellDir, 'confusion.png'));
  // One curve per stage and figure, on one step axis (semi-supervised steps follow supervised ones).
  const series: Record<string, [number, number][]> = {};
  let offset = 0;
  let lastStage = '';
  let lastStep = 0;
  for (const l of log) {
    if (l.stage !== lastStage) {
      offset += lastStep;
      lastStage = l.stage;
    }
    lastStep = l.step;
    const x = offset + l.step;
    (series[`${l.stage} loss`] ??= []).push([x, l.loss]);
    if (typeof l.kappa === 'number') (series['mean κ'] ??= []).push([x, l.kappa]);
    if (typeof l.mask_rate === 'number') (series['mask rate'] ??= []).push([x, l.mask_rate]);
  }
  await writePng(curveSvg(series, `${metrics.id} — training`), path.join(cellDir, 'curves.png'));
  // metrics.json last: its presence marks the cell finished for --resume.
  writeJson(path.join(cellDir, 'metrics.json'), metrics);
}

/** The search trace (every scored setting) as JSON and as a picture of validation accuracy per trial. */
async function writeTuning(cellDir: string, id: string, tuning: CellTuning): Promise<void> {
  writeJson(path.join(cellDir, 'tuning.json'), tuning);
  let best = -Infinity;
  const series: Record<string, [number, number][]> = { 'trial accuracy %': [], 'best so far %': [] };
  for (const t of tuning.trials) {
    best = Math.max(best, t.score);
    series['trial accuracy %']!.push([t.index + 1, t.score * 100]);
    series['best so far %']!.push([t.index + 1, best * 100]);
  }
  await writePng(curveSvg(series, `${id} — ${tuning.tuner} search (validation split)`), path.join(cellDir, 'tuning.png'));
}

/** The project's git commit, for tracking tags; null outside a git checkout. */
function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: path.dirname(new URL(import.meta.url).pathname), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || null;
  } catch {
    return null;
  }
}
