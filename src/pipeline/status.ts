import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../core/errors.ts';
import { leaseState } from '../core/lease.ts';
import { readLaunch, readManifest, type RunManifest } from './manifest.ts';
import { cellFolders, LOCK_FILE } from './results.ts';
import { planUnits, unitStatus, whereOf, type UnitCell, type UnitDetail } from './units.ts';

export interface RunStatusReport {
  readonly dir: string;
  readonly title: string;
  readonly status: RunManifest['status'];
  /** run.json says running, but the `ssfer run` that holds the run no longer runs (killed). */
  readonly orphaned: boolean;
  /** Handed to a scheduler with --detach. */
  readonly detached: boolean;
  readonly launcher: string;
  readonly started: string;
  readonly finished: string | null;
  readonly cells: number;
  readonly seeds: number;
  readonly counts: Record<UnitDetail['state'], number>;
  readonly units: readonly UnitDetail[];
}

/**
 * Where every unit of a run stands, read from its folder alone (run.json, recipe.resolved.json,
 * and each unit's metrics, lease and attempts): it needs neither the recipe nor a live launcher,
 * so it works on a run that is going, finished or was killed.
 */
export function runStatus(dir: string): RunStatusReport {
  const manifest = readManifest(dir);
  const launch = readLaunch(dir);
  const resolvedFile = path.join(dir, 'recipe.resolved.json');
  if (!fs.existsSync(resolvedFile)) throw new UsageError(`${dir}: no recipe.resolved.json there; name a folder that 'ssfer run' wrote`);
  const resolved = JSON.parse(fs.readFileSync(resolvedFile, 'utf8')) as { cells: UnitCell[] };
  const recipe = { cells: resolved.cells, seeds: manifest.seeds ?? 1 };
  const units = planUnits(recipe, dir, cellFolders(recipe, dir, true), true).map((u) => ({
    ...u,
    label: recipe.seeds > 1 ? `${u.cell.id} seed ${u.seedIndex}` : u.cell.id,
  }));
  const details = units.map((u) => unitStatus(u, launch?.launch ?? null, launch?.max_retries ?? 0));
  const counts = { done: 0, running: 0, failed: 0, waiting: 0 };
  for (const d of details) counts[d.state]++;
  const lock = leaseState(path.join(dir, LOCK_FILE), { staleMs: Number.POSITIVE_INFINITY });
  const orphaned = manifest.status === 'running' && !manifest.detached && (!lock || !lock.live) && counts.running === 0;
  return {
    dir,
    title: manifest.title,
    status: manifest.status,
    orphaned,
    detached: Boolean(manifest.detached),
    launcher: manifest.launcher ?? 'inline',
    started: manifest.started,
    finished: manifest.finished ?? null,
    cells: resolved.cells.length,
    seeds: recipe.seeds,
    counts,
    units: details,
  };
}

/** The report as text: the run, the counts, then the running, failed and waiting units. */
export function statusText(r: RunStatusReport, opts: { waiting?: number } = {}): string {
  const out: string[] = [r.title, `${r.dir}`];
  const state = r.orphaned
    ? `killed (run.json says running, but no process runs it; 'ssfer collect ${r.dir}' builds the table of what finished, 'ssfer run <recipe> --resume ${r.dir}' continues it)`
    : r.status === 'running' && r.detached
      ? 'running (detached: a scheduler trains its units, and a job after them builds the table)'
      : r.status;
  out.push(`run: ${state} · launcher ${r.launcher} · started ${r.started}${r.finished ? ` · ended ${r.finished}` : ''}`);
  const of = r.seeds > 1 ? `${r.cells} cells × ${r.seeds} seeds` : `${r.cells} cells`;
  out.push(`units: ${r.units.length} (${of}): ${r.counts.done} done · ${r.counts.running} running · ${r.counts.failed} failed · ${r.counts.waiting} waiting`);
  const width = Math.max(0, ...r.units.filter((u) => u.state !== 'done').map((u) => u.label.length));
  const running = r.units.filter((u) => u.state === 'running');
  if (running.length) {
    out.push('', 'running:');
    for (const u of running) out.push(`  ${u.label.padEnd(width)}  ${u.where ?? whereOf(null)}${u.since ? `, since ${u.since}` : ''} (attempt ${u.attempts})`);
  }
  const failed = r.units.filter((u) => u.state === 'failed');
  if (failed.length) {
    out.push('', 'failed:');
    for (const u of failed) {
      out.push(`  ${u.label.padEnd(width)}  after ${u.attempts} attempt${u.attempts === 1 ? '' : 's'}: ${u.error ?? 'failed'}`);
      for (const line of u.tail ?? []) out.push(`      ${line}`);
    }
  }
  const waiting = r.units.filter((u) => u.state === 'waiting');
  if (waiting.length) {
    const shown = opts.waiting ?? 20;
    out.push('', 'waiting:');
    for (const u of waiting.slice(0, shown)) out.push(`  ${u.label.padEnd(width)}${u.error ? `  ${u.error}` : ''}`.trimEnd());
    if (waiting.length > shown) out.push(`  … ${waiting.length - shown} more`);
  }
  return `${out.join('\n')}\n`;
}
