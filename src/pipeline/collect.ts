import path from 'node:path';
import { writeAtomic, writeJson } from '../core/files.ts';
import type { RunStatus, Tracker } from '../contracts/tracker.ts';
import type { ResolvedRecipe } from '../recipe/recipe.ts';
import { buildTable, estimateCells, tableMarkdown, tableText, type CellEstimate, type SeedResult, type Table } from '../report/table.ts';
import type { CellMetrics } from './cell-context.ts';
import { resolveRun, type RunManifest } from './manifest.ts';
import { Progress } from './progress.ts';
import { cellFolders } from './results.ts';
import { tableNotes } from './outputs.ts';
import { tableMetrics } from '../tracking/summary.ts';
import { trackedSummary } from './tracked.ts';
import { STOP_SIGNALS, type StopSignal } from './seed-run.ts';
import { finishedMetrics, planUnits, readAttempts, unitStatus, type Unit, type UnitDetail } from './units.ts';

/** The run's units as its folder holds them: each seed's result (accuracy, failure or none yet) and where every unit stands. */
export interface Collected {
  /** Per cell, how each of its seeds ended (null: not finished, nor failed for good), in seed order. */
  readonly results: Map<string, SeedResult[]>;
  /** Per cell, each finished seed's metrics (null: not finished), in seed order. */
  readonly metricsOf: Map<string, (CellMetrics | null)[]>;
  /** Every unit's state, in the run's order. */
  readonly units: readonly UnitDetail[];
  /** The backends the finished units trained on (their last attempts say), in order of first use. */
  readonly backends: readonly string[];
}

/** Reads every unit's result and state from the run folder (a run still going, finished, or killed). */
export function collectUnits(recipe: ResolvedRecipe, units: readonly Unit[], launch: string | null, maxRetries: number): Collected {
  const results = new Map(recipe.cells.map((c) => [c.id, Array<SeedResult>(recipe.seeds).fill(null)]));
  const metricsOf = new Map(recipe.cells.map((c) => [c.id, Array<CellMetrics | null>(recipe.seeds).fill(null)]));
  const details: UnitDetail[] = [];
  const backends: string[] = [];
  for (const unit of units) {
    const detail = unitStatus(unit, launch, maxRetries);
    details.push(detail);
    const metrics = detail.state === 'done' ? finishedMetrics(unit.dir, unit.cell.id, unit.cell.config.seed) : null;
    if (metrics) {
      results.get(unit.cell.id)![unit.seedIndex] = metrics;
      metricsOf.get(unit.cell.id)![unit.seedIndex] = metrics;
      const starts = readAttempts(unit.dir).filter((l) => l.event === 'start');
      const backend = (starts[starts.length - 1] as { backend?: string } | undefined)?.backend;
      if (backend && !backends.includes(backend)) backends.push(backend);
    } else if (detail.state === 'failed') {
      results.get(unit.cell.id)![unit.seedIndex] = { error: detail.error ?? 'failed' };
    }
  }
  return { results, metricsOf, units: details, backends };
}

/** Writes table.json and table.md from what was collected; returns the table. */
export function writeTables(recipe: ResolvedRecipe, dir: string, collected: Collected, backend: string): Table {
  const notes = tableNotes(recipe.cells.map((c) => ({ id: c.id, runs: collected.metricsOf.get(c.id)! })));
  const table = buildTable(recipe, collected.results, { backend: collected.backends.length ? collected.backends.join(', ') : backend, notes });
  writeJson(path.join(dir, 'table.json'), table);
  writeAtomic(path.join(dir, 'table.md'), tableMarkdown(table));
  return table;
}

/** What is missing from a run's table: the units neither finished nor failed, by state. */
export function missingText(collected: Collected): string | null {
  const missing = collected.units.filter((u) => u.state === 'running' || u.state === 'waiting');
  if (!missing.length) return null;
  const running = missing.filter((u) => u.state === 'running');
  const waiting = missing.filter((u) => u.state === 'waiting');
  const list = (us: readonly UnitDetail[]) =>
    us
      .slice(0, 8)
      .map((u) => u.label)
      .join(', ') + (us.length > 8 ? `, … (${us.length - 8} more)` : '');
  return [
    `${missing.length} of ${collected.units.length} units not finished (shown as —):`,
    ...(running.length ? [`  running (${running.length}): ${list(running)}`] : []),
    ...(waiting.length ? [`  waiting (${waiting.length}): ${list(waiting)}`] : []),
  ].join('\n');
}

export interface FinishInput {
  readonly recipe: ResolvedRecipe;
  readonly dir: string;
  readonly units: readonly Unit[];
  readonly launch: string;
  readonly maxRetries: number;
  readonly manifest: RunManifest;
  readonly tracker: Tracker;
  readonly progress: Progress;
  /** The cells whose seeds this launch set out to train (the tracker closes their runs). */
  readonly started: ReadonlySet<string>;
  readonly json: boolean;
  /** The signal that stopped the run; null when its launcher ended. */
  readonly interruptedBy: StopSignal | null;
  /** The command line that continues the run, without --resume. */
  readonly resumeWith: readonly string[];
}

/**
 * The end of a run, whoever trained its units: the table from the units in its folder (JSON,
 * Markdown, printed), each cell's figures over its seeds and the run's end to the tracker,
 * run.json's status and the exit status; a run that is not complete says how to continue it.
 */
export async function finishRun(f: FinishInput): Promise<number> {
  const { recipe, dir, manifest, tracker, progress, interruptedBy } = f;
  const collected = collectUnits(recipe, f.units, f.launch, f.maxRetries);
  const table = writeTables(recipe, dir, collected, manifest.backend);
  const failed = collected.units.filter((u) => u.state === 'failed').length;
  const incomplete = collected.units.filter((u) => u.state !== 'done' && u.state !== 'failed').length;
  const estimates = estimateCells(recipe, collected.results);
  for (const c of recipe.cells) {
    const e = estimates.get(c.id)!;
    if (!f.started.has(c.id) && e.runs.every((v) => v === null) && e.status !== 'failed') continue; // nothing of it ran, now or before
    await tracker.summarizeCell(trackedSummary(c), {
      metrics: summaryMetrics(e),
      status: e.status === 'done' ? 'FINISHED' : e.status === 'failed' ? 'FAILED' : 'KILLED',
    });
  }
  const status: RunStatus = interruptedBy || incomplete ? 'KILLED' : failed ? 'FAILED' : 'FINISHED';
  await tracker.endRun({
    artifacts: ['table.md', 'table.json', 'recipe.resolved.json'].map((file) => path.resolve(dir, file)),
    status,
    metrics: tableMetrics(table),
  });
  writeJson(path.join(dir, 'run.json'), {
    ...manifest,
    ...(collected.backends.length ? { backend: collected.backends.join(', ') } : {}),
    status: interruptedBy ? 'interrupted' : incomplete ? 'incomplete' : failed ? 'failed' : 'finished',
    ...(interruptedBy ? { signal: interruptedBy } : {}),
    finished: new Date().toISOString(),
  });

  if (f.json) process.stdout.write(`${JSON.stringify(table)}\n`);
  else process.stdout.write(`\n${tableText(table)}\nresults: ${dir}\n`);
  if (interruptedBy || incomplete) {
    const command = [...f.resumeWith, '--resume', dir];
    const kept = collected.units.filter((u) => u.state === 'done' || u.state === 'failed').length;
    const of =
      recipe.seeds > 1
        ? `${recipe.cells.length * recipe.seeds} seed runs (${recipe.cells.length} cells × ${recipe.seeds} seeds)`
        : `${recipe.cells.length} cells`;
    if (!interruptedBy) progress.log(`ssfer: ${missingText(collected)}`);
    progress.log(
      `ssfer: ${interruptedBy ? 'interrupted' : 'not complete'}; ${kept} of ${of} kept. Continue with: ssfer run ${command.map(shellWord).join(' ')}`,
    );
    return interruptedBy ? STOP_SIGNALS[interruptedBy] : 1;
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

/** A word as a POSIX shell reads it back: quoted when it has anything but safe characters. */
export function shellWord(w: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/**
 * `ssfer collect <run dir>`: the table of a run from the units finished in its folder, whether the
 * run is going on, finished or was killed; what is missing goes to stderr. With `finish`, also the
 * run's end, as `ssfer run` ends it (the job after a detached SLURM array runs this): the tracker
 * joins the run to close it, and run.json gets its status.
 */
export async function collectRun(dir: string, opts: { json: boolean; finish: boolean }): Promise<number> {
  const progress = new Progress();
  const { recipe, manifest, launch } = await resolveRun(dir);
  const units = planUnits(recipe, dir, cellFolders(recipe, dir, true), true);
  if (opts.finish) {
    const tracker = recipe.registry.create('tracker', recipe.cells[0]!.config.tracking, {
      seed: recipe.seed,
      scale: recipe.scale,
      recipeDir: path.dirname(recipe.file),
    });
    const info = {
      recipe: recipe.name,
      title: recipe.title,
      scale: recipe.scale,
      seed: recipe.seed,
      seeds: recipe.seeds,
      backend: manifest.backend,
      dir: path.resolve(dir),
      file: manifest.file,
      commit: null,
    };
    await tracker.join?.(info, launch.tracker, 'collect');
    return finishRun({
      recipe,
      dir,
      units,
      launch: launch.launch,
      maxRetries: launch.max_retries,
      manifest,
      tracker,
      progress,
      started: new Set(recipe.cells.map((c) => c.id)),
      json: opts.json,
      interruptedBy: null,
      resumeWith: launch.resume_with,
    });
  }
  const collected = collectUnits(recipe, units, launch.launch, launch.max_retries);
  const table = writeTables(recipe, dir, collected, manifest.backend);
  if (opts.json) process.stdout.write(`${JSON.stringify(table)}\n`);
  else process.stdout.write(`${tableText(table)}\nwrote ${path.join(dir, 'table.md')} and table.json\n`);
  const missing = missingText(collected);
  if (missing) progress.log(`ssfer collect: ${missing}`);
  const failed = collected.units.filter((u) => u.state === 'failed');
  if (failed.length)
    progress.log(
      `ssfer collect: ${failed.length} unit${failed.length === 1 ? '' : 's'} failed: ${failed.map((u) => u.label).join(', ')} (ssfer status ${dir} says why)`,
    );
  return 0;
}
