import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../core/errors.ts';
import { acquireLease, heldElsewhere, isLease, leaseState } from '../core/lease.ts';
import { selectBackend } from '../engine/backend.ts';
import type { Tracker } from '../contracts/tracker.ts';
import { readManifest, resolveRun } from './manifest.ts';
import { Progress } from './progress.ts';
import { cellFolders } from './results.ts';
import { RunScope } from './scope.ts';
import { pretrainingCached, pretrainingEntry, pretrainingHeldElsewhere } from './pretraining.ts';
import { stageCacheDir, STOP_SIGNALS, stopOnSignals, trainCell, type RunContext } from './seed-run.ts';
import { appendAttempt, attemptsIn, finishedMetrics, planUnits, UNIT_LEASE, unitStatus, type Unit } from './units.ts';

/** Who is training a unit: recorded in its lease and its attempts, shown by `ssfer status`. */
export interface WorkerIdentity {
  /** The worker's name (`w2`), when a launcher named it. */
  readonly worker?: string;
  /** `<array job>_<task>` inside a SLURM job array, `<job>` in a plain job. */
  readonly slurm?: string;
  /** Where this process's output goes, for `ssfer status` to show the last lines of a killed attempt. */
  readonly log?: string;
}

/** This process inside SLURM: its job and array task, from SLURM's environment. */
export function slurmIdentity(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.SLURM_ARRAY_JOB_ID && env.SLURM_ARRAY_TASK_ID) return `${env.SLURM_ARRAY_JOB_ID}_${env.SLURM_ARRAY_TASK_ID}`;
  return env.SLURM_JOB_ID || undefined;
}

export type UnitOutcome = 'done' | 'failed' | 'interrupted' | 'busy';

/**
 * Trains one unit under its lease, recording every attempt in its folder: taken (`busy`) when
 * another live process holds it; a failed attempt is started again at once while this launch's
 * retries last, continuing from the unit's last epoch checkpoint.
 */
export async function runUnit(
  run: RunContext,
  scope: RunScope,
  unit: Unit,
  opts: { launch: string; maxRetries: number; who: WorkerIdentity; backend: string },
): Promise<UnitOutcome> {
  const lease = acquireLease(path.join(unit.dir, UNIT_LEASE), { ...opts.who, unit: unit.key }, { note: (t) => run.progress.log(t) });
  if (!isLease(lease)) return 'busy';
  try {
    for (;;) {
      if (finishedMetrics(unit.dir, unit.cell.id, unit.cell.config.seed)) return 'done';
      const before = unitStatus(unit, opts.launch, opts.maxRetries, { heldHere: true });
      if (before.state === 'failed') return 'failed';
      const attempt = attemptsIn(unit.dir, opts.launch) + 1;
      if (attempt > 1 && before.error)
        run.progress.log(`  ${unit.label}: attempt ${attempt} (the last one: ${before.error}); continuing from its last checkpoint`);
      appendAttempt(unit.dir, {
        event: 'start',
        launch: opts.launch,
        attempt,
        pid: process.pid,
        host: os.hostname(),
        time: new Date().toISOString(),
        backend: opts.backend,
        ...opts.who,
      });
      const outcome = await trainCell(run, scope, unit);
      appendAttempt(unit.dir, {
        event: 'end',
        launch: opts.launch,
        attempt,
        outcome: outcome.status,
        ...(outcome.status === 'failed' ? { error: outcome.error } : {}),
        time: new Date().toISOString(),
      });
      if (outcome.status !== 'failed') return outcome.status;
      if (unitStatus(unit, opts.launch, opts.maxRetries, { heldHere: true }).state === 'failed') return 'failed';
    }
  } finally {
    lease.release();
  }
}

/**
 * Trains units in this process: `units` in that order, else (`queue`) the next unfinished one,
 * again and again until none is left that no other process holds. A queue takes a unit whose
 * pre-training another process is computing only when every other unit left is such a one: the
 * workers of a table pre-train its datasets side by side instead of waiting for each other. Each
 * seed's cells share one run scope (data, pre-training, probes), kept while consecutive units
 * have that seed.
 */
export async function trainUnits(
  run: RunContext,
  units: readonly Unit[],
  opts: { launch: string; maxRetries: number; who: WorkerIdentity; backend: string; queue: boolean },
): Promise<{ outcomes: Map<string, UnitOutcome>; interrupted: boolean }> {
  const outcomes = new Map<string, UnitOutcome>();
  let scope: RunScope | null = null;
  let scopeSeed = -1;
  const entryOf = pretrainingEntries(run);
  try {
    for (let pass = true; pass;) {
      pass = false;
      for (const unit of opts.queue ? readyFirst(units, entryOf) : units) {
        if (run.stopRequested()) return { outcomes, interrupted: true };
        const known = outcomes.get(unit.key);
        if (known && known !== 'busy') continue;
        if (unitStatus(unit, opts.launch, opts.maxRetries).state !== 'waiting') continue;
        if (unit.seedIndex !== scopeSeed) {
          scope?.close();
          scope = new RunScope(run.recipe.registry);
          scopeSeed = unit.seedIndex;
        }
        const outcome = await runUnit(run, scope!, unit, opts);
        outcomes.set(unit.key, outcome);
        if (outcome === 'interrupted') return { outcomes, interrupted: true };
        // Taking the next unit from the start again: an earlier one may have been freed (its worker died).
        if (opts.queue && outcome !== 'busy') {
          pass = true;
          break;
        }
      }
    }
    return { outcomes, interrupted: run.stopRequested() };
  } finally {
    scope?.close();
  }
}

/** Each unit's pre-training cache entry, worked out once per unit (it creates the dataset plugin). */
function pretrainingEntries(run: RunContext): (u: Unit) => string {
  const cache = stageCacheDir(run.outRoot);
  const entries = new Map<string, string>();
  return (u) => {
    if (!entries.has(u.key)) entries.set(u.key, pretrainingEntry(run.recipe.registry, run.recipe, u.cell, cache));
    return entries.get(u.key)!;
  };
}

/**
 * The units in their order, those that would wait for a pre-training another process computes
 * now last: its cache entry is not written, and another process holds its lease or trains a unit
 * that needs it (and will compute it). Checked as each unit is reached, so that what the other
 * workers took meanwhile counts.
 */
function* readyFirst(units: readonly Unit[], entry: (u: Unit) => string): Generator<Unit> {
  const waits = (u: Unit) => {
    const e = entry(u);
    if (pretrainingCached(e)) return false;
    if (pretrainingHeldElsewhere(e)) return true;
    return units.some((o) => o !== u && entry(o) === e && heldElsewhere(leaseState(path.join(o.dir, UNIT_LEASE))));
  };
  const later: Unit[] = [];
  for (const u of units) {
    if (waits(u)) later.push(u);
    else yield u;
  }
  yield* later;
}

/** How often a worker reads the run's unit states for its ETA (each read opens every unit's lease and attempts). */
const UNITS_AFTER_EVERY_MS = 30_000;

/**
 * The units a queue worker may expect to train after its current one: the units of the run that
 * nobody has started, divided among the units running now (this worker's among them). Read at
 * most every 30 s.
 */
export function sharedUnitsAfter(units: readonly Unit[], launch: string, maxRetries: number, everyMs = UNITS_AFTER_EVERY_MS): () => number {
  let at = -Infinity;
  let value = 0;
  return () => {
    const now = Date.now();
    if (now - at >= everyMs) {
      at = now;
      let waiting = 0;
      let running = 0;
      for (const u of units) {
        const state = unitStatus(u, launch, maxRetries).state;
        if (state === 'waiting') waiting++;
        else if (state === 'running') running++;
      }
      value = waiting / Math.max(1, running);
    }
    return value;
  };
}

/**
 * `ssfer worker <run dir>`: takes part in a run that `ssfer run` opened — resolves its recipe from
 * launch.json, joins its tracker, and trains units (the named ones, or the next unfinished one
 * until none is left). Exit status: 0 nothing left to do, 1 a unit failed for good, 130/143/129
 * stopped by a signal (its checkpoints kept), 2 bad input.
 */
export async function runWorker(dir: string, opts: { units?: readonly string[]; maxRetries?: number; name?: string; log?: string }): Promise<number> {
  const progress = new Progress();
  const { recipe, launch } = await resolveRun(dir);
  process.chdir(launch.cwd);
  const folders = cellFolders(recipe, dir, true);
  const all = planUnits(recipe, dir, folders, true);
  let units = all;
  if (opts.units) {
    const byKey = new Map(all.map((u) => [u.key, u]));
    const unknown = opts.units.filter((k) => !byKey.has(k));
    if (unknown.length)
      throw new UsageError(`--units: ${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not a unit of ${dir} (cells/<cell>/seed-<k>)`);
    units = opts.units.map((k) => byKey.get(k)!);
  }
  let backend: string;
  try {
    backend = (await selectBackend(launch.backend ?? undefined)).name;
  } catch (err) {
    throw new UsageError(`--backend: ${(err as Error).message}`);
  }
  const who: WorkerIdentity = {
    ...(opts.name ? { worker: opts.name } : {}),
    ...(slurmIdentity() ? { slurm: slurmIdentity()! } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  };
  const manifest = readManifest(dir);
  const tracker: Tracker = recipe.registry.create('tracker', recipe.cells[0]!.config.tracking, {
    seed: recipe.seed,
    scale: recipe.scale,
    recipeDir: path.dirname(recipe.file),
  });
  const workerName = `${os.hostname()}-${process.pid}`;
  await tracker.join?.(
    {
      recipe: recipe.name,
      title: recipe.title,
      scale: recipe.scale,
      seed: recipe.seed,
      seeds: recipe.seeds,
      backend,
      dir: path.resolve(dir),
      file: manifest.file,
      commit: null,
    },
    launch.tracker,
    workerName,
  );
  progress.log(
    `ssfer worker ${opts.name ?? workerName}${who.slurm ? ` (SLURM ${who.slurm})` : ''}: ${units.length} unit${units.length === 1 ? '' : 's'} of ${dir} · backend ${backend}`,
  );
  const stop = stopOnSignals((t) => progress.log(t), 'finished units and checkpoints are kept');
  try {
    const maxRetries = opts.maxRetries ?? launch.max_retries;
    const run: RunContext = {
      recipe,
      outRoot: launch.out_root,
      progress,
      tracker,
      stopRequested: () => stop.signal() !== null,
      ran: 0,
      ranSeconds: 0,
      // Taking units from a queue, this worker shares what is left with the others.
      ...(opts.units ? {} : { unitsAfter: sharedUnitsAfter(all, launch.launch, maxRetries) }),
    };
    const { outcomes, interrupted } = await trainUnits(run, units, {
      launch: launch.launch,
      maxRetries,
      who,
      backend,
      queue: !opts.units,
    });
    progress.done();
    await tracker.leave?.();
    const count = (o: string) => [...outcomes.values()].filter((v) => v === o).length;
    progress.log(`ssfer worker ${opts.name ?? workerName}: ${count('done')} done, ${count('failed')} failed${interrupted ? ', stopped' : ''}`);
    if (interrupted) return STOP_SIGNALS[stop.signal() ?? 'SIGTERM'];
    return count('failed') ? 1 : 0;
  } finally {
    stop.off();
  }
}
