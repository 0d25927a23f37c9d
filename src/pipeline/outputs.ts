import fs from 'node:fs';
import path from 'node:path';
import { writeAtomic, writeJson } from '../core/files.ts';
import type { FigureTree } from '../contracts/analysis.ts';
import type { ResolvedRecipe } from '../recipe/recipe.ts';
import { chartsSvg, confusionSvg, curveSvg, writePng } from '../report/plots.ts';
import { probeComparison } from '../report/stages.ts';
import type { CellMetrics, CellStep } from './cell.ts';
import type { CellTuning } from './tuning.ts';

/** The paper's accuracy for a cell (at its first entry), as printed beside ours; '—' where the table shows another figure. */
export function fmtRef(recipe: ResolvedRecipe, row: number, column: number): string {
  const entry = recipe.grid.entries.find((e) => e.row === row && e.column === column);
  if (entry && entry.figure !== 'accuracy') return '—';
  const v = recipe.reference?.values[row]?.[column];
  return v === undefined || v === null ? '—' : `${v.toFixed(2)}%`;
}

/** A cell's analysis figures as flat names (`analysis.fgsm-regions.inside.0.02`) for a tracker; finite numbers only. */
export function analysisFigures(metrics: CellMetrics): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (tree: FigureTree, at: string) => {
    for (const [k, v] of Object.entries(tree)) {
      if (typeof v === 'number') {
        if (Number.isFinite(v)) out[`${at}.${k}`] = v;
      } else walk(v, `${at}.${k}`);
    }
  };
  walk(metrics.analysis ?? {}, 'analysis');
  return out;
}

/** A cell's runs, one per seed in seed order (null: not finished). */
export interface CellRuns {
  readonly id: string;
  readonly runs: readonly (CellMetrics | null)[];
}

/**
 * What a reader must know about the numbers: stand-in data, what the loaders left out, stages that
 * did not do their job (per seed), guards a recipe waived, and the cells that do not beat their
 * linear probe — judged on the means over the seeds, so one unlucky seed does not flag a cell.
 */
export function tableNotes(cells: readonly CellRuns[]): string[] {
  const notes = new Set<string>();
  const finished = cells.flatMap((c) => c.runs.filter((m): m is CellMetrics => m !== null));
  for (const m of finished) if (m.dataset.stand_in) notes.add(`${m.dataset.display}: ${m.dataset.stand_in}`);
  // What a loader left out (skipped entries, non-expression rows): older runs' metrics have no notes.
  for (const m of finished) for (const n of m.dataset.notes ?? []) notes.add(`${m.dataset.display}: ${n}`);
  for (const c of cells) {
    c.runs.forEach((m, k) => {
      for (const n of m?.stage_notes ?? []) notes.add(`${c.runs.length > 1 ? `${c.id} seed ${k}` : c.id}: ${n}`);
    });
    const probe = probeNote(c.runs);
    if (probe) notes.add(`${c.id}: ${probe}`);
  }
  return [...notes];
}

/**
 * The note of a cell whose accuracy, the mean over its seeds, is not above its linear probe's
 * (the mean of the probe over the same seeds); null when it is, or when a seed or a probe is missing.
 */
function probeNote(runs: readonly (CellMetrics | null)[]): string | null {
  const c = probeComparison(runs);
  if (!c || c.accuracy > c.probe) return null;
  const pct = (a: number) => `${(100 * a).toFixed(2)} %`;
  return runs.length === 1
    ? `accuracy ${pct(c.accuracy)} is not above the linear probe's ${pct(c.probe)} on the same labels`
    : `mean accuracy ${pct(c.accuracy)} over ${runs.length} seeds is not above the linear probe's mean ${pct(c.probe)} on the same labels`;
}

export async function writeCellOutputs(cellDir: string, metrics: CellMetrics, log: readonly CellStep[]): Promise<void> {
  fs.mkdirSync(cellDir, { recursive: true });
  // One line per step: its position, its figures and its stage.
  writeAtomic(
    path.join(cellDir, 'log.jsonl'),
    log.map((l) => JSON.stringify({ step: l.step, epoch: l.epoch, ...l.metrics, stage: l.stage })).join('\n') + '\n',
  );
  writeJson(path.join(cellDir, 'confusion.json'), { classes: metrics.classes, matrix: metrics.confusion, rows: 'true class', columns: 'predicted class' });
  await writePng(
    confusionSvg(metrics.confusion, metrics.classes, `${metrics.id} — accuracy ${(metrics.accuracy * 100).toFixed(2)}%`),
    path.join(cellDir, 'confusion.png'),
  );
  // One chart per figure the stages report (loss, lr, and whatever else: λ, mean κ, mask rate…),
  // one curve per stage, on one step axis (each stage's steps follow the stage before).
  const charts = new Map<string, Record<string, [number, number][]>>();
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
    for (const [name, value] of Object.entries(l.metrics)) {
      if (!charts.has(name)) charts.set(name, {});
      (charts.get(name)![l.stage] ??= []).push([x, value]);
    }
  }
  await writePng(chartsSvg([...charts].map(([name, series]) => ({ title: `${metrics.id} — ${name}`, series }))), path.join(cellDir, 'curves.png'));
  // metrics.json last: its presence marks the cell finished for --resume.
  writeJson(path.join(cellDir, 'metrics.json'), metrics);
}

/** The search trace (every scored setting) as JSON and as a picture of validation accuracy per trial. */
export async function writeTuning(cellDir: string, id: string, tuning: CellTuning): Promise<void> {
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
