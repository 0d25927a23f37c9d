import fs from 'node:fs';
import path from 'node:path';
import { leaseState, type LeaseHolder } from '../core/lease.ts';
import type { LaunchUnit, UnitStatus } from '../contracts/launcher.ts';
import { seedOf, type ResolvedCell } from '../recipe/recipe.ts';
import type { CellMetrics } from './cell-context.ts';
import { seedFolder } from './results.ts';

/**
 * The units of a run: one seed of one cell each, in the run's order (every cell's seed 0, then
 * every cell's seed 1, …), each with its folder `cells/<cell>/seed-<k>`. Whoever trains a unit —
 * the run's own process or a worker — holds its lease (`unit.lock` in its folder) while it does and
 * records every attempt in `attempts.jsonl` there; a finished unit is the one whose metrics.json
 * names its cell and seed. Everything about a unit's state is read from these files.
 */
export interface Unit<C extends UnitCell = ResolvedCell> extends LaunchUnit {
  /** The cell with this seed in its config (seed k is the cell's seed + k; seed 0 the cell's own). */
  readonly cell: C;
  readonly seedIndex: number;
  /** Its folder (absolute). */
  readonly dir: string;
  /** Its place in the run's order, from 0. */
  readonly position: number;
}

/** What a unit needs of its cell: its id and its seed (a resolved cell, or a cell of recipe.resolved.json). */
export interface UnitCell {
  readonly id: string;
  readonly config: { readonly seed: number };
}

export const UNIT_LEASE = 'unit.lock';
export const ATTEMPTS = 'attempts.jsonl';

/** Every unit of a run; `folders` names each cell's folder under cells/. */
export function planUnits<C extends UnitCell>(
  recipe: { readonly cells: readonly C[]; readonly seeds: number },
  runDir: string,
  folders: ReadonlyMap<string, string>,
  resumed: boolean,
): Unit<C>[] {
  const units: Unit<C>[] = [];
  for (let k = 0; k < recipe.seeds; k++) {
    for (const [i, cell] of recipe.cells.entries()) {
      const dir = path.resolve(seedFolder(path.join(runDir, 'cells', folders.get(cell.id)!), k, resumed));
      units.push({
        key: path.relative(path.resolve(runDir), dir).split(path.sep).join('/'),
        label: recipe.seeds > 1 ? `${cell.id} seed ${k}` : cell.id,
        cell: { ...cell, config: { ...cell.config, seed: seedOf(cell.config.seed, k) } },
        seedIndex: k,
        dir,
        position: k * recipe.cells.length + i,
      });
    }
  }
  return units;
}

/**
 * A seed of a cell that finished (its metrics.json is written last, with the cell's id and the
 * seed). Runs of versions before seeds wrote no seed: their one is seed 0.
 */
export function finishedMetrics(seedDir: string, id: string, seed: number): CellMetrics | null {
  const file = path.join(seedDir, 'metrics.json');
  if (!fs.existsSync(file)) return null;
  let metrics: CellMetrics;
  try {
    metrics = JSON.parse(fs.readFileSync(file, 'utf8')) as CellMetrics;
  } catch {
    return null;
  }
  return metrics.id === id && (metrics.seed ?? seed) === seed ? metrics : null;
}

/** One line of attempts.jsonl: an attempt started (by whom, in which launch) or ended (how). */
export type AttemptLine =
  | {
      event: 'start';
      launch: string;
      attempt: number;
      pid: number;
      host: string;
      time: string;
      /** The backend it trains on. */
      backend?: string;
      worker?: string;
      slurm?: string;
      log?: string;
    }
  | { event: 'end'; launch: string; attempt: number; outcome: 'done' | 'failed' | 'interrupted'; error?: string; time: string };

export function readAttempts(unitDir: string): AttemptLine[] {
  let text: string;
  try {
    text = fs.readFileSync(path.join(unitDir, ATTEMPTS), 'utf8');
  } catch {
    return [];
  }
  const out: AttemptLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as AttemptLine);
    } catch {
      // a line cut short when its process was killed
    }
  }
  return out;
}

export function appendAttempt(unitDir: string, line: AttemptLine): void {
  fs.mkdirSync(unitDir, { recursive: true });
  fs.appendFileSync(path.join(unitDir, ATTEMPTS), `${JSON.stringify(line)}\n`);
}

/** How many attempts of this launch started the unit. */
export function attemptsIn(unitDir: string, launch: string): number {
  return readAttempts(unitDir).filter((l) => l.event === 'start' && l.launch === launch).length;
}

/** `pid 123 on node1` or `SLURM 45_3, pid 123 on node1`, and the worker's name when it has one. */
export function whereOf(h: Partial<LeaseHolder> | null | undefined): string {
  if (!h) return 'an unknown process';
  const at = `pid ${h.pid ?? '?'} on ${h.host ?? '?'}`;
  const worker = typeof h.worker === 'string' ? ` (${h.worker})` : '';
  return typeof h.slurm === 'string' ? `SLURM ${h.slurm}, ${at}` : `${at}${worker}`;
}

export interface UnitDetail extends UnitStatus {
  /** The last attempt's start (any launch), when there was one. */
  readonly lastStart?: Extract<AttemptLine, { event: 'start' }>;
  /** The last lines of the unit's error (its stack), or of the log of the process that was killed running it. */
  readonly tail?: string[];
  /** Since when it runs (running). */
  readonly since?: string;
}

/**
 * Where a unit stands: done (metrics.json), running (a live lease), failed (its last attempt
 * failed or was killed, and 1 + maxRetries attempts of this launch failed or were killed), or
 * waiting (not started yet, or to be started again — after an attempt that failed with retries
 * left, or one stopped by a signal, which continues from its checkpoint; `error` says which).
 */
export function unitStatus(
  unit: LaunchUnit & { cell: UnitCell; dir: string },
  launch: string | null,
  maxRetries: number,
  opts: { heldHere?: boolean } = {},
): UnitDetail {
  const base = { key: unit.key, label: unit.label };
  const lines = readAttempts(unit.dir);
  const attempts = launch === null ? lines.filter((l) => l.event === 'start').length : lines.filter((l) => l.event === 'start' && l.launch === launch).length;
  if (finishedMetrics(unit.dir, unit.cell.id, unit.cell.config.seed)) return { ...base, state: 'done', attempts };
  // The process that holds the lease asks what its own attempts left: its lease says nothing.
  const lease = opts.heldHere ? null : leaseState(path.join(unit.dir, UNIT_LEASE));
  if (lease?.live) return { ...base, state: 'running', attempts, where: whereOf(lease.holder), ...(lease.holder ? { since: lease.holder.started } : {}) };
  const starts = lines.filter((l): l is Extract<AttemptLine, { event: 'start' }> => l.event === 'start');
  const lastStart = starts[starts.length - 1];
  const errorFile = path.join(unit.dir, 'error.json');
  const recorded = fs.existsSync(errorFile) ? (safeJson(errorFile) as { error?: string; stack?: string } | null) : null;
  if (!lastStart) {
    // A run of a version before launchers recorded no attempts: its error.json says it failed.
    if (recorded) return { ...base, state: 'failed', attempts, error: recorded.error ?? 'failed', tail: tailOf(recorded.stack) };
    return { ...base, state: 'waiting', attempts };
  }
  const end = lines.find((l) => l.event === 'end' && l.launch === lastStart.launch && l.attempt === lastStart.attempt) as
    Extract<AttemptLine, { event: 'end' }> | undefined;
  let error: string | undefined;
  let tail: string[] | undefined;
  if (!end) {
    error = `killed while running (${whereOf(lastStart)}, started ${lastStart.time}): it recorded no end`;
    tail = lastStart.log ? lastLines(lastStart.log, 8) : undefined;
  } else if (end.outcome === 'failed') {
    error = end.error ?? recorded?.error ?? 'failed';
    tail = tailOf(recorded?.stack) ?? (lastStart.log ? lastLines(lastStart.log, 8) : undefined);
  } else if (end.outcome === 'interrupted') {
    error = `interrupted (${whereOf(lastStart)}): continues from its last epoch checkpoint`;
  }
  // Attempts of this launch that failed or were killed (an interrupted one was stopped on purpose and continues).
  const inLaunch = starts.filter((s) => launch === null || s.launch === launch);
  const spent = inLaunch.filter((s) => {
    const e = lines.find((l) => l.event === 'end' && l.launch === s.launch && l.attempt === s.attempt) as Extract<AttemptLine, { event: 'end' }> | undefined;
    return !e || e.outcome === 'failed';
  }).length;
  const exhausted = error !== undefined && end?.outcome !== 'interrupted' && spent >= 1 + maxRetries;
  return {
    ...base,
    state: exhausted ? 'failed' : 'waiting',
    attempts,
    lastStart,
    ...(error ? { error } : {}),
    ...(tail?.length ? { tail } : {}),
  };
}

function safeJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

function tailOf(stack: string | undefined): string[] | undefined {
  return stack ? stack.split('\n').slice(0, 8) : undefined;
}

/** The last n lines of a text file (read from its end), or undefined when it cannot be read. */
export function lastLines(file: string, n: number): string[] | undefined {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      return buf
        .toString('utf8')
        .split(/\r|\n/)
        .filter((l) => l.trim() !== '')
        .slice(-n);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}
